"""LayoutPlots: neuron-position and delay-histogram PNGs in the run directory (and W&B)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger

from lightning_modules.outputs import run_folder
from lightning_modules.summary import save_plots


class LayoutPlots(Callback):
    """Saves ``layout.png`` (positions + strongest synapses) and ``delays.png`` at the end of fit.

    Files go into the trainer's log directory (the run directory); when a
    :class:`~lightning.pytorch.loggers.WandbLogger` is attached they are also
    logged as images.

    Args:
        every_n_epochs: also save ``layout_epoch{N}.png`` / ``delays_epoch{N}.png``
            every N epochs (None: only at the end).
        top_k: strongest synapses drawn per layer.
    """

    def __init__(self, every_n_epochs: int | None = None, top_k: int = 100) -> None:
        if every_n_epochs is not None and every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1 or None, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs
        self.top_k = top_k
        self.saved: list[Path] = []

    def _save(self, trainer: L.Trainer, pl_module: L.LightningModule, suffix: str) -> None:
        run_dir = run_folder(trainer)  # every rank must ask; None: a trial run
        if trainer.is_global_zero and run_dir is not None:
            self._write(trainer, pl_module, run_dir, suffix)

    def _write(self, trainer, pl_module, run_dir: Path, suffix: str) -> None:
        paths = save_plots(pl_module, run_dir, top_k=self.top_k, suffix=suffix)
        self.saved.extend(paths)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for path in paths:
                    logger.log_image(key=path.stem, images=[str(path)])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if self.every_n_epochs and epoch % self.every_n_epochs == 0 and epoch < trainer.max_epochs:
            self._save(trainer, pl_module, f"_epoch{epoch}")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer, pl_module, "")
