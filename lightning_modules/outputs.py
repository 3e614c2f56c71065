"""Where the commands write: a folder is checked by writing to it, before any work; a
trial run (``fast_dev_run``) writes no run files at all."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

#: What a run that writes nothing tells its user (:func:`run_folder`).
TRIAL_RUN_NOTE = (
    "--trainer.fast_dev_run: a trial of a few batches, not a run: nothing was written "
    "(no summary.json, plots, checkpoints or predictions; spsnn report will not list it)"
)


def run_folder(trainer: Any) -> Path | None:
    """The folder of the trainer's run (``trainer.log_dir``, else ``default_root_dir``),
    where the callbacks write summary.json, plots and predictions; every rank must ask
    (``log_dir`` is a collective). None for a ``fast_dev_run``: Lightning gives that trial
    no logger and no run folder, so its files would land in ``default_root_dir`` itself,
    where ``spsnn report`` would take a few batches for a run and the next trial would
    overwrite them."""
    if getattr(trainer, "fast_dev_run", False):
        return None
    return Path(trainer.log_dir or trainer.default_root_dir)


def check_writable_folder(folder: Path, what: str) -> None:
    """Raises ValueError (one line: ``what``, the folder and why) unless a file can be created
    in ``folder``. Probes with a temporary file, so that permissions, read-only file
    systems and the superuser's rights all count as they will when the command writes."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what}: {folder} is a file, not a folder")
    if not folder.is_dir():
        raise ValueError(f"{what}: its folder {folder} does not exist")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(
            f"{what}: its folder {folder} is not writable ({error.strerror})"
        ) from error
