"""PredictionWriter: ``spsnn predict`` writes each sample's class and per-class readout to CSV."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from lightning_modules.classifier import Prediction
from lightning_modules.outputs import run_folder
from spatial_layers.finite import raise_if_nonfinite


class PredictionWriter(BasePredictionWriter):
    """Writes the predictions of ``trainer.predict`` as CSV in the run directory.

    One row per sample, in the order of the predict loader (the DataModules:
    the test split): ``sample`` (its index in the split), ``label`` (the true
    class, empty when the batches carry none), ``prediction`` (the class the
    classifier picks, argmax of the readout) and ``readout_<k>``: the logits of
    class k that the prediction is taken from (the classifier's ``readout``:
    max-over-time membrane, ...).

    Args:
        filename: file name in the run directory (``trainer.log_dir``); with
            several processes each writes its own, ``<stem>.rank<r><suffix>``.

    Attributes:
        path: the file written last (None before).
    """

    def __init__(self, filename: str = "predictions.csv") -> None:
        super().__init__(write_interval="epoch")
        self.filename = filename
        self.path: Path | None = None

    def write_on_epoch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        predictions: Sequence[Any],
        batch_indices: Sequence[Any],
    ) -> None:
        raise_if_nonfinite(pl_module)  # non-finite CUDA input never becomes a prediction
        if len(batch_indices) != 1:  # Lightning nests the indices per predict loader
            raise ValueError(
                f"PredictionWriter writes one predict loader, got {len(batch_indices)}"
            )
        rows = _rows(predictions, batch_indices[0])
        self.path = self._target(trainer)
        if self.path is None:
            return  # a trial run (fast_dev_run) writes nothing
        self.path.parent.mkdir(parents=True, exist_ok=True)
        classes = len(rows[0]) - 3 if rows else 0
        with open(self.path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["sample", "label", "prediction", *(f"readout_{k}" for k in range(classes))]
            )
            writer.writerows(rows)

    def _target(self, trainer: L.Trainer) -> Path | None:
        folder = run_folder(trainer)
        if folder is None:
            return None
        path = folder / self.filename
        if trainer.world_size > 1:
            path = path.with_name(f"{path.stem}.rank{trainer.global_rank}{path.suffix}")
        return path


def _rows(predictions: Sequence[Prediction], batch_indices: Sequence[Any]) -> list[list]:
    rows = []
    for batch, indices in zip(predictions, batch_indices, strict=True):
        labels = [""] * len(batch.prediction) if batch.label is None else batch.label.tolist()
        readout = batch.readout.float().cpu()
        for index, label, predicted, values in zip(
            indices, labels, batch.prediction.tolist(), readout.tolist(), strict=True
        ):
            rows.append([int(index), label, predicted, *(f"{v:.9g}" for v in values)])
    return rows


def read_predictions(path: str | Path) -> dict[str, torch.Tensor]:
    """The columns of a file :class:`PredictionWriter` wrote: ``sample``, ``label`` (-1 where
    absent), ``prediction`` (int64, (N,)) and ``readout`` (float32, (N, classes))."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    classes = sum(key.startswith("readout_") for key in rows[0]) if rows else 0
    return {
        "sample": torch.tensor([int(r["sample"]) for r in rows]),
        "label": torch.tensor([int(r["label"]) if r["label"] else -1 for r in rows]),
        "prediction": torch.tensor([int(r["prediction"]) for r in rows]),
        "readout": torch.tensor([[float(r[f"readout_{k}"]) for k in range(classes)] for r in rows]),
    }
