"""Where the commands write: a folder is checked by writing to it, before any work."""

from __future__ import annotations

import tempfile
from pathlib import Path


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
