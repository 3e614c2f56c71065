"""spatial_layers: spiking-network layers whose synaptic delays come from neuron coordinates.

The library of spsnn, plain PyTorch (torch and numpy; Triton and NIR optional; never
Lightning): neuron positions and the delay kernels, the delayed layer in sequence and
streaming form (snnTorch style with ``init_hidden=True``, Norse style with
:class:`SpatialDelayCell`), fused spiking neurons (:class:`Leaky`, :class:`Synaptic`,
:class:`AdaptiveLeaky`), the :class:`SpatialSNN` network,
hardware profiles (:mod:`spatial_layers.hardware`) and the NIR conversion
(:func:`to_nir`, :func:`from_nir`; needs ``pip install "spsnn[nir]"``).
"""

from spatial_layers.accounting import ParameterCount, count_parameters
from spatial_layers.delay import SpatialDelay, delay_layers, use_kernel
from spatial_layers.functional import DelayState, delayed_linear, delayed_step
from spatial_layers.geometry import NeuronPositions, distance_to_delay, pairwise_distance
from spatial_layers.kernels import delay_kernel, round_delays
from spatial_layers.networks import HiddenPopulation, LeakyReadout, SNNOutput, SpatialSNN
from spatial_layers.neurons import (
    AdaptiveLeaky,
    Leaky,
    LeakyParameters,
    NeuronCell,
    Synaptic,
    leaky_integrate,
    leaky_sequence,
    leaky_step,
    recurrent_leaky,
)
from spatial_layers.streaming import SpatialDelayCell, detach, reset

#: Names that import the NIR conversion (and the ``nir`` package) on first use.
_NIR_NAMES = ("from_nir", "to_nir")


def __getattr__(name: str):
    """``to_nir`` and ``from_nir``, imported on first use: ``nir`` is an optional dependency."""
    if name in _NIR_NAMES:
        try:
            from spatial_layers import nir as conversion
        except ModuleNotFoundError as error:
            raise ImportError(
                f'spatial_layers.{name} needs the nir package ({error}): pip install "spsnn[nir]"'
            ) from error
        return getattr(conversion, name)
    raise AttributeError(f"module 'spatial_layers' has no attribute {name!r}")


__all__ = [
    "AdaptiveLeaky",
    "DelayState",
    "HiddenPopulation",
    "Leaky",
    "LeakyParameters",
    "LeakyReadout",
    "NeuronCell",
    "NeuronPositions",
    "ParameterCount",
    "SNNOutput",
    "SpatialDelay",
    "SpatialDelayCell",
    "SpatialSNN",
    "Synaptic",
    "count_parameters",
    "delay_kernel",
    "delay_layers",
    "delayed_linear",
    "delayed_step",
    "detach",
    "distance_to_delay",
    "from_nir",
    "leaky_integrate",
    "leaky_sequence",
    "leaky_step",
    "pairwise_distance",
    "recurrent_leaky",
    "reset",
    "round_delays",
    "to_nir",
    "use_kernel",
]
