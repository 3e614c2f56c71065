"""RunSummary: ``summary.json`` in the run directory after every fit, with the test that follows.

Any fit with this callback writes the summary, whether the CLI started it or
Python code did: counts (:func:`~lightning_modules.summary.model_summary`),
validation accuracy, epochs, wall time, seed, run name, the checkpoint the
run's result comes from, the network that ran (``net``, the model's
``hparams.net``: class path and arguments), the checkpoint a resumed fit
started from (``resumed_from``) and, for a data module that counts them
(``event_counts``: SHD, SSC), the events of each split read, binned, kept and
lost by reason (``data_events``; None otherwise). A test of that checkpoint in the same trainer
(``trainer.test(ckpt_path=summary.test_checkpoint(trainer))``, as ``spsnn
fit`` runs one) adds its ``test_acc`` and rewrites the file. A peer callback with a
``summary_fields()`` method adds what it returns (``LayoutAnalysis``: the layout
measures under ``"analysis"``). ``spsnn report`` makes its tables from these files.
``wall_time_s`` counts from the fit's callback setup (after the data module's) to the
file's last write. A ``fast_dev_run`` writes no file
(:func:`~lightning_modules.outputs.run_folder`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn

from lightning_modules.callbacks.last_checkpoint import LastCheckpoint
from lightning_modules.outputs import run_folder
from lightning_modules.summary import model_summary, write_summary

#: The metric a best-validation checkpoint is chosen by.
VALIDATION_METRIC = "val_acc"

TestCheckpoint = Literal["last", "best_val"]


class RunSummary(Callback):
    """Writes ``summary.json`` after every fit; a test of the run's checkpoint adds test_acc.

    Args:
        test_ckpt: where the run's test accuracy comes from: ``"last"`` (the
            last epoch: :class:`LastCheckpoint`'s file, or the weights in
            memory without one) or ``"best_val"`` (the best ``val_acc``
            checkpoint of a ModelCheckpoint monitoring it; never the test set).
        filename: name of the file in the run directory (``trainer.log_dir``).

    Attributes:
        summary: what the file holds (None before the first fit ends).
        path: where it was written (None before, and on ranks other than 0).
    """

    def __init__(self, test_ckpt: TestCheckpoint = "last", filename: str = "summary.json") -> None:
        if test_ckpt not in ("last", "best_val"):
            raise ValueError(f"test_ckpt must be 'last' or 'best_val', got {test_ckpt!r}")
        self.test_ckpt = test_ckpt
        self.filename = filename
        self.summary: dict[str, Any] | None = None
        self.path: Path | None = None
        self._started = 0.0

    def test_checkpoint(self, trainer: L.Trainer) -> str | None:
        """The checkpoint to test for the run's result (None: the weights in memory)."""
        if self.test_ckpt == "best_val":
            return _best_validation(trainer).best_model_path
        last = [c for c in trainer.checkpoint_callbacks if isinstance(c, LastCheckpoint)]
        return (last[0].best_model_path or None) if last else None

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._started = time.perf_counter()
            self.summary = self.path = None

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        run_dir = run_folder(trainer)  # a collective: all ranks; None: a trial run
        checkpoint = self.test_checkpoint(trainer)
        if self.test_ckpt == "best_val":
            val_acc = _as_float(_best_validation(trainer).best_model_score)
            best_epoch = torch.load(checkpoint, map_location="cpu", weights_only=True).get("epoch")
        else:
            val_acc, best_epoch = _as_float(trainer.callback_metrics.get(VALIDATION_METRIC)), None
        seed = os.environ.get("PL_GLOBAL_SEED")
        self.summary = {
            "test_acc": None,
            "val_acc": val_acc,
            **model_summary(pl_module),
            "epochs": trainer.current_epoch,
            "wall_time_s": None,
            "test_acc_epoch": self.test_ckpt,
            "best_val_epoch": best_epoch,
            "checkpoint": checkpoint,
            "seed": None if seed is None else int(seed),
            "run_name": trainer.logger.name if trainer.logger is not None else None,
            "run_dir": None if run_dir is None else str(run_dir),
            "net": pl_module.hparams.get("net"),
            "resumed_from": trainer.ckpt_path,
            "data_events": _data_events(trainer),
        }
        for callback in trainer.callbacks:
            fields = getattr(callback, "summary_fields", None)
            if callback is not self and callable(fields):
                self.summary |= fields()
        self._write(trainer, run_dir)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.summary is None:
            return  # a test that follows no fit of this callback
        tested = trainer.ckpt_path
        expected = self.summary["checkpoint"]
        if tested != expected and not (tested is None and self.test_ckpt == "last"):
            rank_zero_warn(
                f"{self.filename} keeps no test accuracy: this test used {tested!r}, the "
                f"run's result is {expected!r} (test_ckpt={self.test_ckpt!r})"
            )
            return
        self.summary["test_acc"] = _as_float(trainer.callback_metrics.get("test_acc"))
        run_dir = self.summary["run_dir"]
        self._write(trainer, None if run_dir is None else Path(run_dir))

    def _write(self, trainer: L.Trainer, run_dir: Path | None) -> None:
        self.summary["wall_time_s"] = round(time.perf_counter() - self._started, 2)
        if trainer.is_global_zero and run_dir is not None:
            self.path = write_summary(run_dir / self.filename, self.summary)


def _data_events(trainer: L.Trainer) -> dict[str, Any] | None:
    """The data module's ``event_counts`` (per split: events read, binned, kept and lost by
    reason, as :class:`~lightning_modules.data.HeidelbergDataModule` counts them), or None
    for a data module that does not count events."""
    counts = getattr(trainer.datamodule, "event_counts", None)
    return dict(counts) if isinstance(counts, dict) else None


def _best_validation(trainer: L.Trainer) -> ModelCheckpoint:
    """The trainer's ModelCheckpoint that keeps the best ``val_acc`` and has saved one."""
    found = [
        callback
        for callback in trainer.checkpoint_callbacks
        if isinstance(callback, ModelCheckpoint)
        and callback.monitor == VALIDATION_METRIC
        and callback.best_model_path
    ]
    if len(found) != 1:
        raise RuntimeError(
            f"test_ckpt 'best_val' needs one ModelCheckpoint that monitors "
            f"{VALIDATION_METRIC!r} and has saved a checkpoint, found {len(found)}"
        )
    return found[0]


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return float(value.detach().cpu())
    return float(value)
