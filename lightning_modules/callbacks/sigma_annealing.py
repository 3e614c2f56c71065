"""SigmaAnnealing: shrink the Gaussian delay kernels during training, as DCLS-delays does."""

from __future__ import annotations

import math
from typing import Literal

import lightning as L
from lightning.pytorch.callbacks import Callback

from lightning_modules.callbacks.single_instance import check_single_instance
from lightning_modules.run_length import planned_epochs, planned_steps
from spatial_layers import SpatialDelay, delay_layers
from spatial_layers.arguments import check_positive, is_number
from spatial_layers.kernels import default_sigma

AnnealSchedule = Literal["exponential", "linear", "cosine"]


def annealed_sigma(start: float, end: float, progress: float, schedule: AnnealSchedule) -> float:
    r"""Kernel width after a fraction ``progress`` (clipped to [0, 1]) of the annealing phase.

    .. math::
        \sigma_{exp}(p) = \sigma_0 (\sigma_1 / \sigma_0)^p, \quad
        \sigma_{lin}(p) = \sigma_0 + (\sigma_1 - \sigma_0) p, \quad
        \sigma_{cos}(p) = \sigma_1 + (\sigma_0 - \sigma_1)(1 + \cos \pi p) / 2
    """
    p = min(max(progress, 0.0), 1.0)
    if schedule == "exponential":
        return start * (end / start) ** p
    if schedule == "linear":
        return start + (end - start) * p
    if schedule == "cosine":
        return end + (start - end) * 0.5 * (1 + math.cos(math.pi * p))
    raise ValueError(f"schedule must be 'exponential', 'linear' or 'cosine', got {schedule!r}")


class SigmaAnnealing(Callback):
    """Anneals ``sigma`` of every :class:`SpatialDelay` from ``start`` to ``end``.

    DCLS-delays starts its Gaussian kernels wide (max_delay / 2), so every
    delay gets gradient from far-away spikes, and shrinks them exponentially
    to ~0.5 steps over the first quarter of training; from then on the kernel
    is nearly a single tap.

    Args:
        start: initial width in steps; None uses each layer's
            ``max_delay / 2`` (at least ``end``).
        end: final width in steps (> 0).
        fraction: share of the training run over which sigma anneals.
        schedule: ``"exponential"`` (DCLS-delays), ``"linear"`` or ``"cosine"``.
        interval: update every optimizer ``"step"`` or every ``"epoch"``.
    """

    def __init__(
        self,
        start: float | None = None,
        end: float = 0.5,
        fraction: float = 0.25,
        schedule: AnnealSchedule = "exponential",
        interval: Literal["step", "epoch"] = "step",
    ) -> None:
        if start is not None:
            start = check_positive("start", start, "steps")
        end = check_positive("end", end, "steps")
        if not (is_number(fraction) and 0 < fraction <= 1):
            raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}")
        if interval not in ("step", "epoch"):
            raise ValueError(f"interval must be 'step' or 'epoch', got {interval!r}")
        annealed_sigma(1.0, 1.0, 0.0, schedule)  # validates the schedule name
        self.start = start
        self.end = end
        self.fraction = fraction
        self.schedule = schedule
        self.interval = interval

    def _progress(self, trainer: L.Trainer) -> float:
        if self.interval == "step":
            total, now = planned_steps(trainer, "SigmaAnnealing"), trainer.global_step
        else:
            fix = " (max_steps with interval 'step')"
            total, now = planned_epochs(trainer, "SigmaAnnealing", fix), trainer.current_epoch
        return now / (self.fraction * max(total, 1))

    def sigma_for(self, layer: SpatialDelay, progress: float) -> float:
        """The width ``layer`` gets at ``progress`` through the annealing phase."""
        start = (
            self.start if self.start is not None else max(default_sigma(layer.max_delay), self.end)
        )
        return annealed_sigma(start, self.end, progress, self.schedule)

    def _apply(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        progress = self._progress(trainer)
        sigmas = []
        for layer in delay_layers(pl_module):
            layer.sigma = self.sigma_for(layer, progress)
            sigmas.append(layer.sigma)
        if sigmas and trainer.training and not trainer.sanity_checking:
            pl_module.log("sigma", max(sigmas), on_step=False, on_epoch=True, sync_dist=True)

    def check_peers(self, callbacks: list[Callback]) -> None:
        """Refuses a second SigmaAnnealing (see
        :mod:`~lightning_modules.callbacks.single_instance`)."""
        check_single_instance(callbacks, self)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check_peers(trainer.callbacks)
        progress = self._progress(trainer)
        for layer in delay_layers(pl_module):
            layer.sigma = self.sigma_for(layer, progress)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.interval == "step":
            self._apply(trainer, pl_module)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.interval == "epoch":
            self._apply(trainer, pl_module)
