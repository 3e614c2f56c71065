"""Hardware profiles: a network trained and evaluated in a chip's formats, a subpackage a target.

``net.hardware_profile = "loihi2"`` (the training app's ``HardwareQAT`` callback sets
it late in a run) makes a :class:`~spatial_layers.SpatialSNN` compute what the chip
computes, through the :class:`~spatial_layers.hardware.base.HardwareProfile`
interface. Targets:

- ``"loihi2"`` (:mod:`spatial_layers.hardware.loihi2`): Intel's Loihi 2, with its
  formats, the profile, a numpy reference of its integer arithmetic and a report of
  what a network uses of the chip.

To add a target, write ``hardware/<name>/`` with a ``HardwareProfile`` subclass and
add an instance to :data:`PROFILES`.
"""

from spatial_layers.hardware.base import HardwareProfile, ProfiledNetwork, ProfileRun
from spatial_layers.hardware.loihi2.profile import LOIHI2

#: The hardware profiles by name.
PROFILES: dict[str, HardwareProfile] = {profile.name: profile for profile in (LOIHI2,)}


def get_profile(name: str) -> HardwareProfile:
    """The profile called ``name``; ValueError listing the profiles for another name.

    Example:
        >>> get_profile("loihi2").max_delay
        62
    """
    if name not in PROFILES:
        raise ValueError(f"hardware profile must be one of {tuple(PROFILES)} or None, got {name!r}")
    return PROFILES[name]


__all__ = ["PROFILES", "HardwareProfile", "ProfileRun", "ProfiledNetwork", "get_profile"]
