"""EpochSeed: reseed the random generators at the start of every training epoch."""

from __future__ import annotations

import os
import random

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


class EpochSeed(Callback):
    """Seeds torch, numpy and random with ``seed + epoch`` when a training epoch starts.

    The shuffling of the training DataLoader (drawn from the global torch
    generator when its iterator is made, right after this hook) and the
    dropout masks of an epoch then depend on the seed and the epoch number
    only. A run resumed from a checkpoint therefore repeats exactly what the
    uninterrupted run would have done.

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

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seed = (self._base() + 1_000_003 * trainer.current_epoch) % 2**32
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
