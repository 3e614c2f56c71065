"""StepSeed: reseed the random generators before every training batch."""

from __future__ import annotations

import os
import random

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from lightning_modules.callbacks.single_instance import check_single_instance

#: Multiplier that spreads consecutive steps over the seed space.
STEP_STRIDE = 1_000_003


class StepSeed(Callback):
    """Seeds torch, numpy and random from ``(seed, global_step)`` before every training batch.

    The random numbers a training step draws (dropout masks, noise) then
    depend on the seed and the step number only, not on what ran before it in
    this process. A run resumed from a checkpoint therefore draws exactly what
    the uninterrupted run drew (Lightning builds the first data iterator of a
    resumed epoch at a different moment, which would otherwise shift the
    global generator). Training-set order is the data module's business
    (``EpochShuffleSampler`` depends on seed and epoch only).

    Args:
        seed: base seed; None takes the one ``seed_everything`` set
            (``PL_GLOBAL_SEED``), or 0.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def _base(self) -> int:
        if self.seed is not None:
            return int(self.seed)
        return int(os.environ.get("PL_GLOBAL_SEED", 0))

    def seed_for(self, step: int) -> int:
        """The seed used before training step ``step``."""
        return (self._base() + STEP_STRIDE * (step + 1)) % 2**32

    def check_peers(self, callbacks: list[Callback]) -> None:
        """Refuses a second StepSeed (see :mod:`~lightning_modules.callbacks.single_instance`)."""
        check_single_instance(
            callbacks,
            self,
            fix="spsnn fit adds a StepSeed itself, seeded by seed_everything: remove the "
            "other and set --seed_everything",
        )

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check_peers(trainer.callbacks)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx) -> None:
        seed = self.seed_for(trainer.global_step)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
