"""The SHD / SSC file format, checked: one owner for every file spsnn reads.

A Heidelberg file (Cramer et al. 2020) is HDF5 with::

    spikes/times   (N,) variable-length floats: per sample, event times in seconds
    spikes/units   (N,) variable-length ints: per sample, the unit of each event, 0..699
    labels         (N,) ints: class ids in [0, num_classes)
    extra/speaker  (N,) ints: speaker ids (needed only to hold out speakers)
    extra/keys     (num_classes,) the word of each class id (optional)

Every DataModule that reads such files (SHD, SSC, a user's folder) checks each one in two
steps, both here, before any training:

* :func:`check_header` (when the DataModule is built; reads only small arrays): the path
  is a readable, non-empty HDF5 file; the keys exist and are datasets; ``spikes/times``
  and ``spikes/units`` are 1-D variable-length arrays of floats (not integers: whole
  seconds) and of integers;
  ``labels`` is a 1-D integer array; all have one entry per sample; the file holds at
  least one sample; every label lies in ``[0, num_classes)``; ``extra/keys``, where
  present, names ``num_classes`` distinct words; where whole speakers are to be held
  out, ``extra/speaker`` is a 1-D integer array of the same length naming at least 2
  speakers.
* :func:`iter_checked_events` (when the events are read, in ``setup``): per sample,
  times and units of equal length; times finite, >= 0 and below :data:`MAX_TIME_S`;
  units in ``[0, num_units)``.

Each violation raises :class:`HeidelbergFileError`: one line naming the file, what is
wrong (the value, where) and what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

NUM_UNITS = 700
"""Input units (cochlea channels) of SHD and SSC."""

MAX_TIME_S = 1.0e6
"""Largest event time (seconds from the sample onset) a file may hold: SHD/SSC samples
last about 1 s; anything near this bound is not in seconds (and would overflow tonic's
int64 microseconds far beyond it)."""

CHUNK_SIZE = 4096
"""Samples read from the file at a time."""

FORMAT_HINT = (
    "SHD/SSC files hold spikes/times (per-sample seconds), spikes/units (per-sample ints "
    "0..699), labels (ints) and extra/speaker"
)


class HeidelbergFileError(ValueError):
    """An SHD/SSC file that is unreadable or breaks the format; one line naming the file,
    the problem and the fix."""


@dataclass(frozen=True)
class HeidelbergFile:
    """A file that passed :func:`check_header`.

    Attributes:
        path: the file.
        labels: (N,) int64 class ids, each in ``[0, num_classes)``.
        speakers: (N,) int64 speaker ids, or None where the file has no usable
            ``extra/speaker`` (then no speaker split can be asked for).
        size: bytes; with ``mtime_ns`` the file's identity for caches.
        mtime_ns: modification time in nanoseconds.
    """

    path: Path
    labels: np.ndarray
    speakers: np.ndarray | None
    size: int
    mtime_ns: int

    @property
    def num_samples(self) -> int:
        """N."""
        return len(self.labels)


SAMPLE_SECONDS = 1.0
"""About how long an SHD/SSC sample lasts (seconds): what times in seconds reach."""

TIME_UNITS = (("microseconds", 1e6), ("milliseconds", 1e3))
"""Units event times are mistakenly written in, and their size in seconds' terms."""


def time_unit_guess(latest: float, expected_s: float) -> tuple[str, float] | None:
    """The unit (name, per second) times seem to be in when their latest is ``latest`` where
    seconds would give at most about ``expected_s``; None when it is not far off (the
    nearest unit on a log scale, from 30x the expected on)."""
    if not latest > 30 * expected_s:
        return None
    ratio = latest / expected_s
    return min(TIME_UNITS, key=lambda unit: abs(np.log10(ratio / unit[1])))


def _fail(path: Path, problem: str, fix: str | None = None) -> HeidelbergFileError:
    return HeidelbergFileError(f"{path}: {problem}; {fix or FORMAT_HINT}")


def _open(path: Path) -> h5py.File:
    """``path`` opened for reading, or a one-line error naming why it cannot be."""
    if path.is_dir():
        raise _fail(
            path,
            "a folder, not an HDF5 file",
            "point data_dir at the folder that holds the .h5 files",
        )
    if not path.is_file():
        raise _fail(path, "no such file", "check data_dir")
    if not os.access(path, os.R_OK):
        raise _fail(
            path, "not readable (permission denied)", "give the user running spsnn read access"
        )
    if path.stat().st_size == 0:
        raise _fail(path, "an empty file (0 bytes)", "copy or extract it again")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        reason = " ".join(str(error).split())[:160]
        raise _fail(
            path,
            f"not a readable HDF5 file ({reason})",
            "it is truncated or not an SHD/SSC file: copy or extract it again",
        ) from None  # the message says why (the CLI shows the root cause)


def _dataset(path: Path, f: h5py.File, key: str, *, required: bool = True) -> h5py.Dataset | None:
    try:
        node = f.get(key)
    except Exception as error:  # whatever h5py raises for a damaged group: one line
        raise _fail(
            path, f"cannot read {key!r} ({' '.join(str(error).split())[:120]})"
        ) from None  # the message says why (the CLI shows the root cause)
    if node is None:
        if not required:
            return None
        raise _fail(path, f"no {key!r} dataset (it has {_keys(f)})")
    if not isinstance(node, h5py.Dataset):
        raise _fail(path, f"{key!r} is a {type(node).__name__}, not a dataset")
    return node


def _keys(f: h5py.File) -> str:
    names: list[str] = []
    f.visit(lambda name: names.append(name) if len(names) < 12 else None)
    return ", ".join(names) or "nothing"


def _kind(dtype: np.dtype) -> str:
    return {"f": "floats", "i": "integers", "u": "integers", "b": "booleans"}.get(
        dtype.kind, f"{dtype} values"
    )


def _integer_times(path: Path, times: h5py.Dataset) -> HeidelbergFileError:
    """The error for integer event times, saying which unit they look like (from the first
    samples' largest)."""
    base = h5py.check_vlen_dtype(times.dtype)
    try:
        first = [np.asarray(t) for t in times[:256]]
        latest = max((int(t.max()) for t in first if t.size), default=0)
    except Exception:  # unreadable events are reported by the event checks' own message
        latest = 0
    problem = f"{times.name!r} must hold float event times in seconds, got integers ({base})"
    unit = time_unit_guess(latest, SAMPLE_SECONDS)
    if unit is None:
        return _fail(
            path,
            problem,
            "whole seconds would put every event of a sample at 0 s, 1 s, ...: write the "
            "times as floats in seconds",
        )
    return _fail(
        path,
        f"{problem}, up to {latest} in the first samples: {unit[0]}?",
        f"SHD/SSC store float seconds: write times / {unit[1]:g} as floats".replace("e+0", "e"),
    )


def _check_vlen(path: Path, node: h5py.Dataset, kinds: str, what: str) -> None:
    """``node`` is a 1-D variable-length array whose elements are of a dtype kind in ``kinds``."""
    base = h5py.check_vlen_dtype(node.dtype)
    if node.ndim != 1 or base is None:
        layout = f"a {node.dtype} array of shape {node.shape}"
        raise _fail(
            path,
            f"{node.name!r} must be a 1-D variable-length array ({what} per sample), got {layout}",
        )
    if not isinstance(base, np.dtype):  # h5py gives the Python type of variable-length strings
        raise _fail(path, f"{node.name!r} must hold {what}, got variable-length strings")
    if base.kind not in kinds:
        raise _fail(path, f"{node.name!r} must hold {what}, got {_kind(base)} ({base})")


def _integers(path: Path, node: h5py.Dataset, what: str, n: int | None) -> np.ndarray:
    """The 1-D integer array ``node`` (of length ``n`` when given) as int64."""
    if node.ndim != 1:
        raise _fail(
            path, f"{node.name!r} must be 1-D ({what}, one per sample), got shape {node.shape}"
        )
    if n is not None and len(node) != n:
        raise _fail(
            path,
            f"{node.name!r} has {len(node)} entries for {n} samples (spikes/times has {n})",
            "the file is damaged or assembled from parts: every dataset needs one entry per sample",
        )
    try:
        values = node[()]
    except Exception as error:  # whatever h5py raises for damaged data: one line
        raise _fail(
            path, f"cannot read {node.name!r} ({' '.join(str(error).split())[:120]})"
        ) from None  # the message says why (the CLI shows the root cause)
    values = np.asarray(values)
    if values.dtype.kind not in "iu":
        example = ""
        if values.dtype.kind == "f":
            odd = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
            if odd.size:
                example = f", e.g. {_show(values[odd[0]])} at sample {odd[0]}"
        elif values.size:
            example = f", e.g. {_show(values.ravel()[0])} at sample 0"
        raise _fail(
            path,
            f"{node.name!r} must be integers ({what}), got {_kind(values.dtype)} "
            f"({values.dtype}){example}",
            "spsnn never rounds or converts ids: write them as integers",
        )
    if values.dtype.kind == "u" and values.size and values.max() > np.iinfo(np.int64).max:
        i = int(np.argmax(values))
        raise _fail(
            path,
            f"{node.name!r} holds {values[i]} at sample {i}, beyond any {what[:-1]} spsnn reads",
            "is it an SHD/SSC file? ids are small non-negative integers",
        )
    return values.astype(np.int64)


def _show(value: object) -> str:
    """A short repr of one stored value (a numpy scalar as the Python value it holds)."""
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value) if not isinstance(value, np.ndarray) else f"an array {value.tolist()!r}"
    return text if len(text) <= 40 else text[:37] + "..."


def check_header(
    path: str | os.PathLike,
    *,
    num_classes: int,
    need_speakers: bool = False,
) -> HeidelbergFile:
    """Checks everything of an SHD/SSC file but the events themselves (see the module).

    Reads the labels, speakers and class words, not the spikes: fast enough to run when
    a DataModule is built.

    Args:
        path: the ``.h5`` file.
        num_classes: labels must lie in ``[0, num_classes)``; ``extra/keys``, where
            present, must name that many distinct words.
        need_speakers: whole speakers will be held out of this file: it needs a valid
            ``extra/speaker`` naming at least 2 speakers.

    Raises:
        HeidelbergFileError: one line naming the file, the problem and the fix.
    """
    path = Path(path)
    with _open(path) as f:
        times = _dataset(path, f, "spikes/times")
        units = _dataset(path, f, "spikes/units")
        # Seconds as integers would put every event of a sample at 0 s, 1 s, ...: refused,
        # and times in another unit named as such.
        _check_vlen(path, times, "fiu", "float event times in seconds")
        if h5py.check_vlen_dtype(times.dtype).kind in "iu":
            raise _integer_times(path, times)
        _check_vlen(path, units, "iu", "integer unit ids")
        n = len(times)
        if len(units) != n:
            raise _fail(
                path,
                f"spikes/units has {len(units)} samples, spikes/times {n}",
                "the file is damaged or assembled from parts: both need one entry per sample",
            )
        labels = _integers(path, _dataset(path, f, "labels"), "class ids", n)
        if n == 0:
            raise _fail(path, "holds no samples (0 labels)", "copy or extract the file again")
        bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
        if bad.size:
            raise _fail(
                path,
                f"{bad.size} labels outside [0, {num_classes}): {labels[bad[0]]} at sample "
                f"{bad[0]} (labels span {labels.min()}..{labels.max()})",
                f"this data set has {num_classes} classes: is it the right file for this "
                "DataModule?",
            )
        keys = _dataset(path, f, "extra/keys", required=False)
        if keys is not None:
            words = np.asarray(keys[()]).ravel() if keys.ndim else np.asarray([keys[()]])
            if len(words) != num_classes or len(set(words.tolist())) != len(words):
                distinct = len(set(words.tolist()))
                raise _fail(
                    path,
                    f"extra/keys names {len(words)} class words ({distinct} distinct), this "
                    f"data set has {num_classes} classes",
                    "is it the right file for this DataModule?",
                )
        speaker_node = _dataset(path, f, "extra/speaker", required=need_speakers)
        speakers = None
        if speaker_node is not None:
            try:
                speakers = _integers(path, speaker_node, "speaker ids", n)
            except HeidelbergFileError:
                if need_speakers:
                    raise
        if need_speakers:
            found = np.unique(speakers)
            if len(found) < 2:
                raise _fail(
                    path,
                    f"split_by_speaker needs at least 2 speakers in the training file, it "
                    f"names {len(found)} ({found.tolist()[:3]})",
                    "set split_by_speaker=False for a random validation split",
                )
    stat = path.stat()
    return HeidelbergFile(path, labels, speakers, stat.st_size, stat.st_mtime_ns)


def iter_checked_events(
    file: HeidelbergFile, *, num_units: int = NUM_UNITS, chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every sample's raw events, checked (see the module), the file opened once.

    Yields:
        per sample, in file order: times (E,) in seconds as stored (float16 in the real
        files), units (E,) as stored (uint16).

    Raises:
        HeidelbergFileError: at the first chunk of samples that breaks the format or
        cannot be read (a file truncated after its header), naming the sample.
    """
    path = file.path
    with _open(path) as f:
        times, units = f["spikes/times"], f["spikes/units"]
        if len(times) != file.num_samples:
            raise _fail(
                path, "changed since it was checked", "do not modify data files during a run"
            )
        for start in range(0, file.num_samples, chunk_size):
            stop = min(start + chunk_size, file.num_samples)
            try:
                chunk_t, chunk_u = times[start:stop], units[start:stop]
            except Exception as error:  # whatever h5py raises for damaged data: one line
                raise _fail(
                    path,
                    f"cannot read the events of samples {start}..{stop - 1} "
                    f"({' '.join(str(error).split())[:120]})",
                    "the file is truncated or damaged: copy or extract it again",
                ) from None  # the message says why (the CLI shows the root cause)
            _check_chunk(path, start, chunk_t, chunk_u, num_units)
            yield from zip(chunk_t, chunk_u, strict=True)


def _check_chunk(
    path: Path, start: int, times: np.ndarray, units: np.ndarray, num_units: int
) -> None:
    lengths_t = np.fromiter((t.size for t in times), np.int64, len(times))
    lengths_u = np.fromiter((u.size for u in units), np.int64, len(units))
    bad = np.flatnonzero(lengths_t != lengths_u)
    if bad.size:
        i = bad[0]
        raise _fail(
            path,
            f"sample {start + i} has {lengths_t[i]} spike times but {lengths_u[i]} units "
            f"({bad.size} such samples in samples {start}..{start + len(times) - 1})",
            "every event needs a time and a unit: the file is damaged",
        )
    if not lengths_t.sum():
        return
    sample = np.repeat(np.arange(start, start + len(times)), lengths_t)
    all_t = np.concatenate(times).astype(np.float64)
    all_u = np.concatenate(units)
    checks = (  # (events at fault, their values, what they are, the fix given the first)
        (~np.isfinite(all_t), all_t, "event times are NaN or infinite",
         lambda first: "the file is damaged: copy or extract it again"),
        ((all_t < 0) | (all_t >= MAX_TIME_S), all_t, f"event times outside [0, {MAX_TIME_S:g}) s",
         lambda first: _time_window_fix(all_t, first)),
        ((all_u < 0) | (all_u >= num_units), all_u, f"unit ids outside [0, {num_units})",
         lambda first: f"SHD/SSC record {num_units} units: is it the right file?"),
    )  # fmt: skip
    for at_fault, values, what, fix in checks:
        odd = np.flatnonzero(at_fault)
        if odd.size:
            first = odd[0]
            raise _fail(
                path, f"{odd.size} {what} ({values[first]} in sample {sample[first]})", fix(first)
            )


def _time_window_fix(times: np.ndarray, first: int) -> str:
    """The fix for finite event times outside the window, ``times[first]`` the first."""
    unit = time_unit_guess(times.max(), SAMPLE_SECONDS) if times[first] >= 0 else None
    if unit is None:
        return "times are seconds from the sample onset: is the file in the SHD/SSC format?"
    return f"times are seconds from the sample onset: are they in {unit[0]}? SHD/SSC store seconds"
