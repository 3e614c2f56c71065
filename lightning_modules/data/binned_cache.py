"""Binned samples cached on disk, keyed by everything that changes them.

Binning a Heidelberg file takes seconds (SHD) to minutes (SSC), in every process
that calls ``setup``. The result is a few flat arrays (see :class:`BinnedArrays`), so
it is saved once and read back by later runs, DDP ranks and evaluations.

Key: the SHA-256 of the JSON of the settings that change the arrays (the caller's
``key``: the file's path, size, modification time and labels, ``channel_bin``,
``time_bin_ms``, ``num_steps``, the transform, :data:`BINNING_VERSION`...). The file is
``<cache_dir>/<source stem>-<first 20 hex digits>.npz`` and stores the key itself:

* an entry is read only if its stored key equals the asked one exactly (a changed
  setting gives another name, and a name clash is not trusted);
* an entry that cannot be loaded, lacks an array, or whose arrays are inconsistent
  (offsets, bin range, counts, labels) is never used: :func:`read_cache` warns and
  returns None, and the caller bins again and overwrites it;
* entries are written to a temporary file in the same folder and renamed into place
  (:func:`os.replace`), so a reader sees a whole entry or none, also when several
  processes (DDP ranks) write the same one.

Stale entries (of settings no longer used) stay until the folder is deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

BINNING_VERSION = 1
"""Version of spsnn's binning of Heidelberg files; bump it when a change of code changes
the binned numbers, so that no cache of the old code is read."""

CACHE_FOLDER = "spsnn_cache"
"""Name of the cache folder beside the data files (default ``cache_dir``)."""


@dataclass
class BinnedArrays:
    """One file's samples, binned and stored sparsely (CSR-like), with their event counts.

    Sample ``i`` holds the distinct flat bins ``bins[offsets[i]:offsets[i+1]]``
    (``step * C + channel``) with event counts ``counts[...]``.

    Attributes:
        bins: (K,) int32 flat bins in ``[0, T * C)``.
        counts: (K,) float32 event counts, > 0.
        offsets: (N + 1,) int64, from 0 to K, non-decreasing.
        labels: (N,) int64.
        events: (N, 8) int64 per sample, the columns of :data:`EVENT_COLUMNS`: events
            read from the file, events after the transform, events kept, those lost as
            non-finite, outside the units, before the onset, after the window, and the
            latest finite event time in microseconds (-1 without one).
    """

    bins: np.ndarray
    counts: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    events: np.ndarray


EVENT_COLUMNS = (
    "read",
    "transformed",
    "kept",
    "non_finite",
    "outside_units",
    "before_onset",
    "after_window",
    "latest_us",
)
"""Columns of :attr:`BinnedArrays.events`."""

MAX_BINS = int(np.iinfo(np.int32).max) + 1
"""Most (step, channel) bins a sample may have: :attr:`BinnedArrays.bins` are int32."""

_DTYPES = {
    "bins": np.int32,
    "counts": np.float32,
    "offsets": np.int64,
    "labels": np.int64,
    "events": np.int64,
}


def cache_path(
    cache_dir: str | os.PathLike, source: str | os.PathLike, key: dict[str, Any]
) -> Path:
    """Where the entry of ``key`` for the file ``source`` lives."""
    digest = hashlib.sha256(_key_text(key).encode()).hexdigest()[:20]
    return Path(cache_dir) / f"{Path(source).stem}-{digest}.npz"


def _key_text(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, default=str)


def read_cache(
    path: Path, key: dict[str, Any], *, num_bins: int, labels: np.ndarray
) -> BinnedArrays | None:
    """The entry at ``path`` if it exists, was written for exactly ``key`` and is whole and
    consistent (``num_bins = T * C``, ``labels`` the file's); else None (a warning says why,
    unless there was no entry)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != _key_text(key):
                return None  # another key with the same digest prefix: never trusted
            arrays = BinnedArrays(**{f.name: stored[f.name] for f in fields(BinnedArrays)})
        problem = _inconsistency(arrays, num_bins, labels)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        problem = f"unreadable ({type(error).__name__}: {' '.join(str(error).split())[:100]})"
    if problem is None:
        return arrays
    warnings.warn(
        f"spsnn: ignoring the damaged cache entry {path}: {problem}; binning again", stacklevel=2
    )
    return None


def _inconsistency(arrays: BinnedArrays, num_bins: int, labels: np.ndarray) -> str | None:
    for name, dtype in _DTYPES.items():
        if getattr(arrays, name).dtype != dtype:
            return f"{name} is {getattr(arrays, name).dtype}, not {np.dtype(dtype)}"
    n = len(labels)
    offsets = arrays.offsets
    if offsets.shape != (n + 1,) or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        return "its sample offsets do not fit the file"
    if arrays.bins.shape != arrays.counts.shape or offsets[-1] != len(arrays.bins):
        return "its bins and counts do not fit the offsets"
    if arrays.bins.size and (arrays.bins.min() < 0 or arrays.bins.max() >= num_bins):
        return "it holds bins outside the (T, C) grid"
    if not np.all(np.isfinite(arrays.counts)) or np.any(arrays.counts <= 0):
        return "it holds counts that are not positive numbers"
    if not np.array_equal(arrays.labels, labels):
        return "its labels differ from the file's"
    if arrays.events.shape != (n, len(EVENT_COLUMNS)):
        return "its event counts do not fit the file"
    owner = np.repeat(np.arange(n), np.diff(offsets))
    per_sample = np.bincount(owner, weights=arrays.counts.astype(np.float64), minlength=n)
    if not np.array_equal(per_sample, arrays.events[:, EVENT_COLUMNS.index("kept")]):
        return "its counts differ from the events it says it kept"
    return None


def write_cache(path: Path, key: dict[str, Any], arrays: BinnedArrays) -> bool:
    """Writes the entry atomically (a temporary file renamed into place); True when written.

    A folder that cannot be written only costs the cache: a warning, and False.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp"
        )
    except OSError as error:
        warnings.warn(
            f"spsnn: cannot write the binned-data cache in {path.parent} ({error}); "
            "running without it (set cache_dir to a writable folder, or cache=False)",
            stacklevel=2,
        )
        return False
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(
                out,
                key=np.array(_key_text(key)),
                **{f.name: getattr(arrays, f.name) for f in fields(BinnedArrays)},
            )
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        return True
    except OSError as error:
        warnings.warn(
            f"spsnn: cannot write the cache entry {path} ({error}); running without it",
            stacklevel=2,
        )
        return False
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
