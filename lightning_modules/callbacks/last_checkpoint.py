"""LastCheckpoint: ``checkpoints/last.ckpt`` rewritten after every epoch (the resume point)."""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint


class LastCheckpoint(ModelCheckpoint):
    """Rewrites ``checkpoints/last.ckpt`` after every epoch: the state to resume from.

    (ModelCheckpoint's own ``save_last`` only refreshes last.ckpt when a new
    best checkpoint is written, so it would lag behind the real last epoch.)
    Its ``best_model_path`` is that file.
    """

    def __init__(self) -> None:
        super().__init__(filename="last", monitor=None, save_top_k=1, enable_version_counter=False)
