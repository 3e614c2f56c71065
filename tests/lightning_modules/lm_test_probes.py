"""Callbacks the training-stack tests add by class path (also inside DDP subprocesses)."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback


class KillAtEpoch(Callback):
    """Raises when training epoch ``epoch`` starts: a run killed after ``epoch`` epochs."""

    def __init__(self, epoch: int = 1) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"killed at the start of epoch {self.epoch}")


class RankStateDump(Callback):
    """Saves every rank's state dict (and the initial one) to ``directory/rank{r}_{when}.pt``."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def _dump(self, trainer, pl_module, when: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
        torch.save(state, self.directory / f"rank{trainer.global_rank}_{when}.pt")

    def on_train_start(self, trainer, pl_module) -> None:
        self._dump(trainer, pl_module, "start")

    def on_train_end(self, trainer, pl_module) -> None:
        self._dump(trainer, pl_module, "end")
