"""HardwareQAT: train the last part of a run in a chip's number formats.

From ``after`` x the run on, this callback sets the network's
``hardware_profile`` (:mod:`spatial_layers.hardware`): for Loihi 2, integer delays,
8-bit weights on a power-of-two scale per layer and the chip's fixed-point
LIF, all with straight-through gradients. Validation and test then
evaluate that network, and ``spsnn export --target loihi2`` writes it
unchanged: what the run reports is what the chip runs.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

from lightning_modules.callbacks.late_switch import check_switch_fraction, switch_step
from lightning_modules.callbacks.round_delays import RoundDelays
from lightning_modules.callbacks.single_instance import check_single_instance
from spatial_layers import hardware


class HardwareQAT(Callback):
    """Switches the classifier's network to a hardware profile late in training.

    Args:
        target: the profile, ``"loihi2"``.
        after: fraction of the planned optimizer steps
            (``trainer.estimated_stepping_batches``) after which the network
            trains in the profile, in [0, 1); 0 from the start.

    The network must fit the profile from the start (checked at fit start,
    naming what to change). :class:`RoundDelays` does part of the same job
    with other formats, so the two are refused together; so is
    ``model.cuda_graphs`` (the profile's formats follow the weights, which a
    captured graph would freeze).
    """

    def __init__(self, target: str = "loihi2", after: float = 0.75) -> None:
        if target is None:
            raise ValueError("target must name a hardware profile, e.g. 'loihi2'")
        hardware.get_profile(target)  # validates the name
        self.target = target
        self.after = check_switch_fraction(after)

    def check_peers(self, callbacks: list[Callback]) -> None:
        """Refuses a second HardwareQAT, and RoundDelays beside it."""
        check_single_instance(callbacks, self)
        if any(isinstance(callback, RoundDelays) for callback in callbacks):
            raise ValueError(
                "HardwareQAT sets the delays and weights of the profile itself: remove "
                "RoundDelays from trainer.callbacks"
            )

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check_peers(trainer.callbacks)
        if pl_module.hparams.get("cuda_graphs"):
            raise ValueError("HardwareQAT does not run under model.cuda_graphs: set it false")
        self._switch_step = switch_step(trainer, self.after, "HardwareQAT")
        hardware.get_profile(self.target).check(pl_module.net)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step >= self._switch_step and pl_module.net.hardware_profile is None:
            pl_module.net.hardware_profile = self.target
