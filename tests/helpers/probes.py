"""Callbacks the training-stack tests add by class path (also inside DDP subprocesses),
a state-dict comparison and the check of a refused command, for any test."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback


def differing_keys(got: dict, want: dict) -> list[str]:
    """Keys of two state dicts whose entries differ: tensors bit for bit, the settings
    modules record (``_extra_state``) as data; keys in one only count too."""
    return sorted(set(got) ^ set(want)) + [
        key
        for key, value in want.items()
        if key in got
        and not (torch.equal(got[key], value) if torch.is_tensor(value) else got[key] == value)
    ]


def state_copy(module) -> dict:
    """A CPU copy of ``module.state_dict()`` that later training does not change."""
    return {
        key: value.detach().cpu().clone() if torch.is_tensor(value) else copy.deepcopy(value)
        for key, value in module.state_dict().items()
    }


def refusal_line(capsys, exit_info) -> str:
    """The one ``error:`` line of a command that exited non-zero, without a traceback."""
    assert exit_info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err[-3000:]
    (line,) = [text for text in err.splitlines() if "error:" in text]
    return line


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
        torch.save(state_copy(pl_module), self.directory / f"rank{trainer.global_rank}_{when}.pt")

    def on_train_start(self, trainer, pl_module) -> None:
        self._dump(trainer, pl_module, "start")

    def on_train_end(self, trainer, pl_module) -> None:
        self._dump(trainer, pl_module, "end")
