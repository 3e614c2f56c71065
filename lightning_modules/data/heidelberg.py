"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC), from their HDF5 files.

The real files are read unchanged, in either of two folder layouts under ``data_dir``
(:func:`find_data_files`)::

    tonic's: <data_dir>/SHD/shd_{train,test}.h5        (what tonic.datasets.SHD(data_dir) reads)
             <data_dir>/SSC/ssc_{train,valid,test}.h5  (tonic.datasets.SSC(data_dir))
    bare:    <data_dir>/shd_{train,test}.h5            (the unzipped files alone)

Nothing is ever downloaded. When the DataModule is built, each file it will read is
found (else :class:`HeidelbergDataMissingError`, naming both layouts) and its header
checked (:func:`~lightning_modules.data.hsd_format.check_header`: keys, lengths, label
type and range, speakers); in ``setup`` its events are read once, checked
(:func:`~lightning_modules.data.hsd_format.iter_checked_events`: equal lengths, finite
non-negative times, unit range), optionally transformed, and binned. ``setup("fit")``
reads every file, the test file included, so that a broken test file stops the run
before its first epoch, not after it.

Events are what tonic's ``SHD``/``SSC`` ``__getitem__`` gives: a structured array with
fields ``t`` (int64 microseconds from the sample onset: ``float64(seconds) * 1e6``
truncated), ``x`` (int64 unit id) and ``p`` (1). A ``transform`` (any of tonic's event
transforms, or a composition of them) receives that array per sample and returns one of
the same kind; spsnn then bins its ``t`` and ``x`` by
:func:`~lightning_modules.data.encoding.binned_event_indices`: units pooled by
``channel_bin`` (700 -> 140 for 5), time cut into ``num_steps`` bins of ``time_bin_ms``
from the onset, counts kept as floats (as DCLS-delays bins the data; its tonic
``ToFrame`` starts the first bin at the first event, ours start at the onset, t = 0).

Binning counts the events each split loses: after the window, before the onset,
non-finite times, units outside 0..699 (the last three only a transform can make).
A split that keeps no event, or whose samples mostly keep none
(:data:`EMPTY_SAMPLES_ERROR`), is an error; one that loses more than
:data:`LOST_EVENTS_WARNING` of its events, or has some samples left with none, is
warned about with the counts and the likely cause. :attr:`HeidelbergDataModule.event_counts`
holds the counts (``summary.json`` records them as ``data_events``).

Binned files are cached on disk (:mod:`~lightning_modules.data.binned_cache`), in
``spsnn_cache/`` beside the data files unless ``cache_dir`` says otherwise, keyed by
the file's identity and every setting that changes the bins.

Validation never touches a test file. SHD has no official validation split, so it is
held out of the training file: whole speakers when ``split_by_speaker`` (seeded),
otherwise random samples. SSC uses its official ``ssc_valid.h5``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np
import tonic
import tonic.datasets
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import Dataset, Subset

from lightning_modules.data.binned_cache import (
    BINNING_VERSION,
    CACHE_FOLDER,
    EVENT_COLUMNS,
    MAX_BINS,
    BinnedArrays,
    cache_path,
    read_cache,
    write_cache,
)
from lightning_modules.data.encoding import binned_event_indices, num_binned_channels
from lightning_modules.data.event_transforms import (
    EVENT_DTYPE,
    TransformIdentityError,
    seeded_numpy,
    transform_description,
    transform_events,
    transform_fingerprint,
)
from lightning_modules.data.hsd_format import (
    NUM_UNITS,
    SAMPLE_SECONDS,
    HeidelbergFile,
    HeidelbergFileError,
    check_header,
    iter_checked_events,
    time_unit_guess,
)
from lightning_modules.data.hsd_layout import (
    DATA_URL,
    HeidelbergDataMissingError,
    bare_file,
    check_data_files,
    data_file,
    find_data_files,
)
from lightning_modules.data.splits import SplitDataModule
from spatial_layers.arguments import check_count as checked_int
from spatial_layers.arguments import check_number as checked_number

__all__ = [
    "DATA_URL",
    "NUM_UNITS",
    "SHD",
    "SSC",
    "BinnedSpikes",
    "HeidelbergDataMissingError",
    "HeidelbergDataModule",
    "SHDDataModule",
    "SSCDataModule",
    "bare_file",
    "check_data_files",
    "data_file",
    "find_data_files",
    "iter_hsd_events",
    "split_train_val",
    "to_microseconds",
]

LOST_EVENTS_WARNING = 0.01
"""Share of a split's events that binning may lose before a warning names it."""

EMPTY_SAMPLES_ERROR = 0.5
"""Share of a split's samples that may keep no event at all before the split is refused
(their input is all zeros: times in the wrong unit, or a window that misses them)."""

SPREAD_WARNING = 0.05
"""Share of the ``num_steps`` time steps a split's events may occupy (all samples
together) before a warning names ``time_bin_ms``: real SHD/SSC samples span ~1 s, all
100 steps of the default 10 ms bins; a bin much wider than the samples puts them in a few
steps. A split whose events all land in one step (of more than one) is refused."""


class _LocalFilesOnly:
    """Mixin for tonic's HSD datasets: read the local ``.h5`` file, never download.

    tonic treats a data set as present only if its ``.zip`` archive is there too, and
    downloads it otherwise; here the extracted ``.h5`` file is all that is needed.
    """

    location_on_system: str
    data_filename: str

    def _check_exists(self) -> bool:
        return os.path.isfile(os.path.join(self.location_on_system, self.data_filename))

    def download(self) -> None:
        raise HeidelbergDataMissingError(
            f"{os.path.join(self.location_on_system, self.data_filename)} not found; "
            f"spsnn never downloads data (get it from {DATA_URL})"
        )


# tonic derives the folder (<save_to>/SHD, <save_to>/SSC) from the class name, so the
# local-only variants keep tonic's names.
class SHD(_LocalFilesOnly, tonic.datasets.SHD):
    """tonic's ``SHD`` reading ``<save_to>/SHD/shd_{train,test}.h5``, never downloading."""


class SSC(_LocalFilesOnly, tonic.datasets.SSC):
    """tonic's ``SSC`` reading ``<save_to>/SSC/ssc_{train,valid,test}.h5``, never downloading."""


def split_train_val(
    speakers: np.ndarray, *, val_fraction: float, split_by_speaker: bool, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hold a validation set out of a training file.

    By speaker: speakers are taken in a seeded random order until the held-out ones
    cover at least ``val_fraction`` of the samples (at least one speaker, and at least
    one speaker is left for training); all samples of a speaker go to one side.
    Otherwise: ``round(val_fraction * N)`` random samples (at least 1, at most N - 1).

    Args:
        speakers: (N,) speaker id of each sample.
        val_fraction: target share of validation samples, in (0, 1).
        split_by_speaker: hold out whole speakers (True) or random samples (False).
        seed: numpy ``default_rng`` seed; the split depends on nothing else.

    Returns:
        (train_indices, val_indices): sorted int64 arrays partitioning ``range(N)``.

    >>> tr, va = split_train_val(np.array([0, 0, 1, 1, 2, 2]), val_fraction=0.3,
    ...                          split_by_speaker=True, seed=0)
    >>> len(tr) + len(va), len(va)
    (6, 2)
    """
    speakers = np.asarray(speakers)
    n = len(speakers)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    if n < 2:
        raise ValueError(
            f"need at least 2 training samples to hold some out for validation, got {n}"
        )
    rng = np.random.default_rng(seed)
    if split_by_speaker:
        ids, counts = np.unique(speakers, return_counts=True)
        if len(ids) < 2:
            raise ValueError(
                f"split_by_speaker needs at least 2 speakers in the training file, got "
                f"{len(ids)}; set split_by_speaker=False for a random split"
            )
        held, covered = [], 0
        for k in rng.permutation(len(ids)):
            if covered >= val_fraction * n or len(held) == len(ids) - 1:
                break
            held.append(ids[k])
            covered += counts[k]
        is_val = np.isin(speakers, held)
    else:
        n_val = min(max(round(val_fraction * n), 1), n - 1)
        is_val = np.zeros(n, dtype=bool)
        is_val[rng.permutation(n)[:n_val]] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def iter_hsd_events(
    dataset: tonic.datasets.HSD, chunk_size: int = 4096
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every sample's events of a tonic SHD/SSC dataset, exactly as its ``__getitem__``
    returns them (times in int64 microseconds, units int64), read with the file opened
    once (tonic opens it for every sample: ~6 ms each)."""
    path = os.path.join(dataset.location_on_system, dataset.data_filename)
    with h5py.File(path, "r") as f:
        times, units = f["spikes/times"], f["spikes/units"]
        for start in range(0, len(times), chunk_size):
            stop = start + chunk_size
            for t, u in zip(times[start:stop], units[start:stop], strict=True):
                yield to_microseconds(t), u.astype(np.int64)


def to_microseconds(times_s: np.ndarray) -> np.ndarray:
    """tonic's conversion of a file's times: ``float64(seconds) * 1e6`` truncated to int64."""
    return (np.asarray(times_s).astype(np.float64) * 1e6).astype(np.int64)


# ------------------------------------------------------------------- datasets
class BinnedSpikes(Dataset):
    """Binned samples stored sparsely; items are dense ``(spikes (T, C) float32, label)``.

    Args:
        arrays: the samples' distinct bins and counts (see
            :class:`~lightning_modules.data.binned_cache.BinnedArrays`).
        num_steps: T.
        num_channels: C.
    """

    def __init__(self, arrays: BinnedArrays, num_steps: int, num_channels: int) -> None:
        self.num_steps = num_steps
        self.num_channels = num_channels
        self.offsets = arrays.offsets
        self.bins = torch.from_numpy(arrays.bins)
        self.counts = torch.from_numpy(arrays.counts)
        self.labels = torch.from_numpy(arrays.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start, stop = self.offsets[index], self.offsets[index + 1]
        dense = torch.zeros(self.num_steps * self.num_channels, dtype=torch.float32)
        dense[self.bins[start:stop].long()] = self.counts[start:stop]
        return dense.view(self.num_steps, self.num_channels), self.labels[index]


@dataclass
class LoadedFile:
    """One file read, checked and binned: the samples and their per-sample event counts."""

    header: HeidelbergFile
    samples: BinnedSpikes
    events: np.ndarray  # (N, len(EVENT_COLUMNS)) int64


class HeidelbergDataModule(SplitDataModule):
    """SHD / SSC: file checks, reading, optional tonic transform, binning, cache, splits.

    The dataset (``dataset_name``, ``classes``) comes from the subclass,
    :class:`SHDDataModule` or :class:`SSCDataModule`; splits and loaders from
    :class:`~lightning_modules.data.splits.SplitDataModule`. Every file the module will
    read is found and its header checked when it is built; ``setup("fit")`` reads, checks
    and bins all of them (the test file too), so any fault in the data stops the run
    before training (see the module docstring).

    Batches: ``(spikes, labels)``, spikes float32 (B, T, C) event counts with
    ``T = num_steps``, ``C = ceil(700 / channel_bin)``; labels int64 (B,).

    Args:
        data_dir: folder that holds ``SHD/`` or ``SSC/`` (tonic's ``save_to``), or the
            ``.h5`` files themselves.
        batch_size: samples per batch.
        channel_bin: input units pooled into one channel (5: 700 -> 140).
        time_bin_ms: width of one time step in ms (10: 1 s -> 100 steps).
        num_steps: T; events after ``num_steps * time_bin_ms`` ms are dropped (counted).
        val_fraction: share of the training file held out for validation.
        split_by_speaker: hold out whole speakers (True) or random samples.
        seed: seed of the validation split, of the training shuffle and of a random
            transform's draws.
        num_workers: DataLoader worker processes.
        transform: a tonic event transform (e.g. ``tonic.transforms.DropEvent(p=0.1)``,
            or a ``Compose`` of several), applied to each sample's events before binning.
            It receives tonic's HSD events (structured ``t`` µs int64, ``x`` unit int64,
            ``p`` = 1) and must return events of that kind; frame transforms
            (``ToFrame``) are refused, since spsnn bins. It runs once per sample when a
            file is binned (not per epoch): a random transform is one fixed draw, seeded
            by ``seed`` and the file. Its ``repr`` (``module.name`` for a function) and
            what it computes
            (:func:`~lightning_modules.data.event_transforms.transform_fingerprint`: code,
            parameters, values read) are part of ``input_settings`` (a checkpoint is not
            evaluated with an edited transform) and of the cache key; one that holds state
            spsnn cannot record (a random generator of its own, an open file) is refused
            unless ``cache=False``.
        cache: keep binned files on disk and read them back when every setting matches.
        cache_dir: folder of the cache; default ``spsnn_cache/`` beside the data files.
        val_file: the file split validation reads (``"valid"``: SSC's official
            one), or None to hold validation out of the training file; set by
            the subclass, not a user option.

    Attributes:
        files: the checked header of each file the module reads, by file split.
        event_counts: the event counts of each split set up so far (see the property).
    """

    dataset_name: ClassVar[str]
    classes: ClassVar[int]

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 256,
        channel_bin: int = 5,
        time_bin_ms: float = 10.0,
        num_steps: int = 100,
        val_fraction: float = 0.1,
        split_by_speaker: bool = True,
        seed: int = 0,
        num_workers: int = 0,
        transform: Callable | None = None,
        cache: bool = True,
        cache_dir: str | None = None,
        *,
        val_file: str | None = None,
    ) -> None:
        super().__init__(batch_size, num_steps, seed, num_workers)
        channel_bin = checked_int("channel_bin", channel_bin, 1)
        if channel_bin > NUM_UNITS:
            raise ValueError(
                f"channel_bin={channel_bin} is more than the {NUM_UNITS} units of the "
                f"recording (num_units={NUM_UNITS}): every unit pools into one channel, as "
                f"with channel_bin={NUM_UNITS}; give channel_bin <= {NUM_UNITS} (5: 140 "
                "channels)"
            )
        if checked_number("time_bin_ms", time_bin_ms) <= 0:
            raise ValueError(f"time_bin_ms must be > 0, got {time_bin_ms}")
        if not 0.0 < checked_number("val_fraction", val_fraction) < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        for name, value in (("split_by_speaker", split_by_speaker), ("cache", cache)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be true or false, got {value!r}")
        grid = num_steps * num_binned_channels(NUM_UNITS, channel_bin)
        if grid > MAX_BINS:
            raise ValueError(
                f"num_steps={num_steps} x {grid // num_steps} channels (channel_bin="
                f"{channel_bin}) is {grid} bins per sample, more than {MAX_BINS} (2**31; a "
                f"dense sample would take {grid * 4 / 2**30:.0f} GiB): lower num_steps (raise "
                "time_bin_ms for the same window) or raise channel_bin"
            )
        self.data_dir = str(data_dir)
        self.channel_bin = channel_bin
        self.time_bin_ms = float(time_bin_ms)
        self.val_fraction = val_fraction
        self.split_by_speaker = split_by_speaker
        self.val_file = val_file
        self.transform = transform
        self.transform_text = transform_description(transform)
        self.cache = cache
        # What the transform computes (its code, parameters, the values it reads): a cache
        # key by its name alone would serve an edited function the bins of the old one.
        # Checkpoints record it too (input_settings): evaluating with an edited transform
        # is refused. None where it cannot be recorded (allowed with cache=False only).
        self.transform_code = None
        if transform is not None:
            try:
                self.transform_code = transform_fingerprint(transform)
            except TransformIdentityError as error:
                if cache:
                    raise ValueError(
                        f"transform {self.transform_text} cannot be cached: {error}, so a cached "
                        "binning could not tell when the transform changes; set cache=False (it "
                        "bins again in every run), or keep only data (numbers, arrays, tonic "
                        "transforms) in what the transform reads"
                    ) from None
        # Speaker ids held out for validation, once setup() has made a held-out split.
        self.val_speakers: np.ndarray | None = None
        required = ("train", "test") if val_file is None else ("train", val_file, "test")
        paths = find_data_files(data_dir, self.dataset_name, required)
        self.files: dict[str, HeidelbergFile] = {
            split: self._check_header(split, path) for split, path in paths.items()
        }
        if val_file is None and self.files["train"].num_samples < 2:
            raise HeidelbergFileError(
                f"{paths['train']}: holds 1 sample; holding a validation set out of it "
                "needs at least 2"
            )
        self.cache_dir = Path(cache_dir) if cache_dir else paths["train"].parent / CACHE_FOLDER
        if transform is not None:
            probe = np.zeros(3, dtype=EVENT_DTYPE)
            probe["t"], probe["x"], probe["p"] = [0, 1000, 2000], [0, 1, 2], 1
            with seeded_numpy(self.seed):
                transform_events(transform, probe, self.transform_text, "a 3-event test sample")
        self._loaded: dict[str, LoadedFile] = {}
        # split -> (file split, sample indices or None for all), once set up
        self._rows: dict[str, tuple[str, np.ndarray | None]] = {}

    @property
    def num_inputs(self) -> int:
        """C = ceil(700 / channel_bin)."""
        return num_binned_channels(NUM_UNITS, self.channel_bin)

    @property
    def num_classes(self) -> int:
        """20 (SHD) or 35 (SSC)."""
        return self.classes

    def encoding_settings(self) -> dict[str, object]:
        """The data set, its binning and (when given) the transform."""
        settings: dict[str, object] = {
            "dataset": self.dataset_name,
            "time_bin_ms": self.time_bin_ms,
            "channel_bin": self.channel_bin,
        }
        if self.transform_text is not None:
            settings["transform"] = self.transform_text
            settings["transform_fingerprint"] = self.transform_code
        return settings

    # ------------------------------------------------------------- reading
    def cache_key(self, split: str) -> dict[str, Any]:
        """Everything that changes the binned arrays of file split ``split``."""
        header = self.files[split]
        key: dict[str, Any] = {
            "binning_version": BINNING_VERSION,
            "dataset": self.dataset_name,
            "file": str(header.path.resolve()),
            "size": header.size,
            "mtime_ns": header.mtime_ns,
            "labels_sha256": hashlib.sha256(header.labels.tobytes()).hexdigest(),
            "num_classes": self.classes,
            "channel_bin": self.channel_bin,
            "time_bin_ms": self.time_bin_ms,
            "num_steps": self.num_steps,
            "num_units": NUM_UNITS,
            "transform": self.transform_text,
        }
        if self.transform is not None:
            key |= {
                "transform_seed": self._transform_seed(split),
                "transform_code": self.transform_code,
                "tonic": tonic.__version__,
            }
        return key

    def _transform_seed(self, split: str) -> int:
        return self.seed * 1000 + ("train", "valid", "test").index(split)

    def _check_header(self, split: str, path: Path) -> HeidelbergFile:
        held_out_by_speaker = self.val_file is None and self.split_by_speaker
        return check_header(
            path,
            num_classes=self.classes,
            need_speakers=split == "train" and held_out_by_speaker,
        )

    def load_file(self, split: str) -> LoadedFile:
        """File split ``split`` ("train", "valid" or "test") read, checked and binned (once;
        from the cache when it holds this file with these settings). A file that changed
        since the DataModule was built is checked again first."""
        if split in self._loaded:
            return self._loaded[split]
        header = self.files[split]
        stat = header.path.stat() if header.path.is_file() else None
        if stat is None or (stat.st_size, stat.st_mtime_ns) != (header.size, header.mtime_ns):
            header = self.files[split] = self._check_header(split, header.path)
        num_bins = self.num_steps * self.num_inputs
        arrays = None
        if self.cache:
            path = cache_path(self.cache_dir, header.path, self.cache_key(split))
            arrays = read_cache(
                path, self.cache_key(split), num_bins=num_bins, labels=header.labels
            )
        if arrays is None:
            arrays = self._bin_file(split)
            if self.cache:
                write_cache(path, self.cache_key(split), arrays)
        loaded = LoadedFile(
            header, BinnedSpikes(arrays, self.num_steps, self.num_inputs), arrays.events
        )
        self._loaded[split] = loaded
        return loaded

    def _bin_file(self, split: str) -> BinnedArrays:
        header = self.files[split]
        uniques, counts, rows = [], [], []
        with seeded_numpy(self._transform_seed(split)):
            for index, (times_s, units) in enumerate(iter_checked_events(header)):
                times_us, units = to_microseconds(times_s), units.astype(np.int64)
                read = len(times_us)
                if self.transform is not None:
                    events = np.empty(read, dtype=EVENT_DTYPE)
                    events["t"], events["x"], events["p"] = times_us, units, 1
                    where = f"sample {index} of {header.path}"
                    times_us, units = transform_events(
                        self.transform, events, self.transform_text, where
                    )
                flat, lost = binned_event_indices(
                    times_us,
                    units,
                    time_bin_ms=self.time_bin_ms,
                    num_steps=self.num_steps,
                    channel_bin=self.channel_bin,
                    num_units=NUM_UNITS,
                )
                bins, bin_counts = np.unique(flat, return_counts=True)
                uniques.append(bins.astype(np.int32))
                counts.append(bin_counts.astype(np.float32))
                finite = np.asarray(times_us, dtype=np.float64)
                finite = finite[np.isfinite(finite)]
                latest = int(min(finite.max(), 2**62)) if finite.size else -1
                rows.append((read, len(times_us), len(flat), *lost, latest))
        offsets = np.zeros(len(uniques) + 1, dtype=np.int64)
        np.cumsum([len(u) for u in uniques], out=offsets[1:])
        return BinnedArrays(
            bins=np.concatenate(uniques) if uniques else np.zeros(0, np.int32),
            counts=np.concatenate(counts) if counts else np.zeros(0, np.float32),
            offsets=offsets,
            labels=header.labels,
            events=np.asarray(rows, dtype=np.int64).reshape(-1, len(EVENT_COLUMNS)),
        )

    def read_split(self, split: str) -> tuple[BinnedSpikes, np.ndarray | None]:
        """File split ``split`` read, checked and binned: the samples and their (N,) speaker
        ids (None where the file has none)."""
        loaded = self.load_file(split)
        return loaded.samples, loaded.header.speakers

    # ------------------------------------------------------------- splits
    def _file_splits(self, stage: str | None) -> tuple[str, ...]:
        if stage in (None, "fit"):
            return tuple(self.files)  # every file, the test file too: checked before training
        if stage == "validate":
            return ("train" if self.val_file is None else self.val_file,)
        return ("test",)

    def setup(self, stage: str | None = None) -> None:
        """Reads, checks and bins every file the stage may use (``fit``: all of them), then
        builds the splits the stage needs and checks each one's event counts."""
        for split in self._file_splits(stage):
            self.load_file(split)
        super().setup(stage)
        if stage in (None, "fit"):
            self._assign("test", "test", None)  # its counts, before training

    def build_split(self, split: str) -> None:
        """Puts ``split`` into :attr:`datasets` from its binned file; a validation set held
        out of the training file fills ``"train"`` and ``"val"`` together."""
        if split == "test":
            self.datasets["test"] = self.load_file("test").samples
            self._assign("test", "test", None)
        elif self.val_file is not None:
            file_split = "train" if split == "train" else self.val_file
            self.datasets[split] = self.load_file(file_split).samples
            self._assign(split, file_split, None)
        else:
            loaded = self.load_file("train")
            speakers = loaded.header.speakers
            train_idx, val_idx = split_train_val(
                # without speaker ids only a random split can be asked for (checked)
                np.arange(loaded.header.num_samples) if speakers is None else speakers,
                val_fraction=self.val_fraction,
                split_by_speaker=self.split_by_speaker,
                seed=self.seed,
            )
            self.datasets["train"] = Subset(loaded.samples, train_idx.tolist())
            self.datasets["val"] = Subset(loaded.samples, val_idx.tolist())
            self.val_speakers = None if speakers is None else np.unique(speakers[val_idx])
            self._assign("train", "train", train_idx)
            self._assign("val", "train", val_idx)

    def _assign(self, split: str, file_split: str, rows: np.ndarray | None) -> None:
        """Records which samples ``split`` holds and checks its event counts (once)."""
        if split in self._rows:
            return
        self._rows[split] = (file_split, rows)
        self._check_events(split)

    # -------------------------------------------------------------- events
    def split_events(self, split: str) -> dict[str, Any]:
        """The event counts of a set-up split (see :attr:`event_counts`)."""
        file_split, rows = self._rows[split]
        table = self._loaded[file_split].events
        table = table if rows is None else table[rows]
        total = {name: int(table[:, i].sum()) for i, name in enumerate(EVENT_COLUMNS)}
        latest = int(table[:, EVENT_COLUMNS.index("latest_us")].max()) if len(table) else -1
        lost = {name: total[name] for name in EVENT_COLUMNS[3:7]}
        binned = total["transformed"]
        return {
            "file": str(self.files[file_split].path),
            "samples": len(table),
            "events_read": total["read"],
            "events_binned": binned,
            "events_kept": total["kept"],
            "events_lost": lost,
            "lost_fraction": 0.0 if binned == 0 else round(sum(lost.values()) / binned, 6),
            "samples_without_events": int((table[:, EVENT_COLUMNS.index("kept")] == 0).sum()),
            "latest_event_s": None if latest < 0 else latest / 1e6,
        }

    @property
    def event_counts(self) -> dict[str, dict[str, Any]]:
        """Per split set up so far ("train", "val", "test"): its file, samples, events read
        from the file (``events_read``), given to binning after the transform
        (``events_binned``), kept in the (T, C) grid, lost by reason, the share lost,
        samples that kept no event and the latest event time (s). ``setup("fit")`` sets up
        all three; ``summary.json`` records this as ``data_events``."""
        return {split: self.split_events(split) for split in self._rows}

    def occupied_steps(self, split: str) -> int:
        """How many of the ``num_steps`` time steps hold an event of some sample of the
        set-up split ``split``."""
        file_split, rows = self._rows[split]
        samples = self._loaded[file_split].samples
        bins = samples.bins.numpy()
        if rows is not None:
            chosen = np.zeros(len(samples), dtype=bool)
            chosen[rows] = True
            bins = bins[np.repeat(chosen, np.diff(samples.offsets))]
        return len(np.unique(bins // self.num_inputs))

    def _check_time_spread(self, split: str, counts: dict[str, Any]) -> None:
        """Refuses a split whose events all land in one time step (of several), warns where
        they occupy less than :data:`SPREAD_WARNING` of the steps: ``time_bin_ms`` far
        wider than the samples leaves the network no timing to learn from."""
        if self.num_steps < 2 or counts["events_kept"] == 0:
            return
        occupied = self.occupied_steps(split)
        if occupied > 1 and occupied >= SPREAD_WARNING * self.num_steps:
            return
        latest = counts["latest_event_s"] or 0.0
        fit = latest * 1000 / self.num_steps
        message = (
            f"{self.dataset_name} {split} split ({counts['file']}): its "
            f"{counts['events_kept']} events land in {occupied} of the num_steps="
            f"{self.num_steps} time steps of time_bin_ms={self.time_bin_ms:g} (the latest "
            f"event is at {latest:g} s): the input has "
            + ("no timing left" if occupied == 1 else "little timing left")
            + (
                f"; give time_bin_ms={fit:.3g} to spread {latest:g} s over num_steps="
                f"{self.num_steps} (SHD/SSC: time_bin_ms=10, num_steps=100)"
                if fit > 0
                else "; lower time_bin_ms (SHD/SSC: time_bin_ms=10, num_steps=100)"
            )
        )
        if occupied == 1:
            raise ValueError(message)
        rank_zero_warn(f"spsnn: {message}")

    def _check_events(self, split: str) -> None:
        """Refuses or warns about what binning lost, then about how the events spread."""
        counts = self.split_events(split)
        self._check_lost_events(split, counts)
        self._check_time_spread(split, counts)

    def _check_lost_events(self, split: str, counts: dict[str, Any]) -> None:
        lost = counts["events_lost"]
        lost_total = sum(lost.values())
        binned, kept = counts["events_binned"], counts["events_kept"]
        if (
            kept > 0
            and lost_total <= LOST_EVENTS_WARNING * binned
            and not counts["samples_without_events"]
        ):
            return
        window_s = self.num_steps * self.time_bin_ms / 1000
        reasons = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in lost.items() if n)
        share = 100 * lost_total / binned if binned else 0.0
        what = (
            f"{self.dataset_name} {split} split ({counts['file']}): binning keeps {kept} of its "
            f"{binned} events" + (f" ({share:.1f} % lost: {reasons})" if reasons else "")
        )
        causes = []
        latest = counts["latest_event_s"]
        if lost["after_window"]:
            # against the samples' length, not the window: a short window is no sign of a unit
            unit = None if latest is None else time_unit_guess(latest, SAMPLE_SECONDS)
            causes.append(
                f"the window is {window_s:g} s (num_steps={self.num_steps} x "
                f"time_bin_ms={self.time_bin_ms:g}) and the latest event is at {latest:g} s"
                + (
                    f": are the times in {unit[0]}? SHD/SSC store seconds"
                    if unit is not None
                    else "; raise num_steps or time_bin_ms to keep them"
                )
            )
        removed = counts["events_read"] - binned
        if removed > 0:
            causes.append(
                f"the transform {self.transform_text} removes {removed} of the "
                f"{counts['events_read']} events read"
            )
        if lost["before_onset"] or lost["non_finite"] or lost["outside_units"]:
            causes.append(f"the transform {self.transform_text} moves events off the grid")
        if counts["samples_without_events"]:
            causes.append(
                f"{counts['samples_without_events']} of {counts['samples']} samples keep no "
                "event (all-zero input)"
            )
        message = f"{what}; {'; '.join(causes)}"
        if kept == 0 or counts["samples_without_events"] > EMPTY_SAMPLES_ERROR * counts["samples"]:
            raise ValueError(
                f"{message}: too little input to learn from or evaluate (spsnn refuses a split "
                f"that keeps no event, or where more than {EMPTY_SAMPLES_ERROR:.0%} of the "
                "samples keep none)"
            )
        rank_zero_warn(f"spsnn: {message}")


class SHDDataModule(HeidelbergDataModule):
    """Spiking Heidelberg Digits: 20 classes, 8156 train / 2264 test samples.

    Reads ``shd_train.h5`` and ``shd_test.h5`` from ``<data_dir>/SHD/`` (tonic's layout)
    or ``<data_dir>/`` (checked at construction; see :func:`find_data_files` and
    :func:`~lightning_modules.data.hsd_format.check_header`). Validation is held out of
    the training file: whole speakers when ``split_by_speaker`` (SHD's training file has
    10), random samples otherwise; seeded by ``seed``. The test file is only used for
    testing (``setup("fit")`` checks it).

    Args:
        data_dir: folder that holds ``SHD/`` (tonic's ``save_to``) or the files.
        **kwargs: ``batch_size``, ``channel_bin``, ``time_bin_ms``, ``num_steps``,
            ``val_fraction``, ``split_by_speaker``, ``seed``, ``num_workers``,
            ``transform``, ``cache``, ``cache_dir``: see :class:`HeidelbergDataModule`
            (the CLI lists them too).
    """

    dataset_name = "SHD"
    classes = 20

    def __init__(self, data_dir: str, **kwargs: Any) -> None:
        super().__init__(data_dir, val_file=None, **kwargs)
        self.save_hyperparameters()
        _describe_transform_in(self)


class SSCDataModule(HeidelbergDataModule):
    """Spiking Speech Commands: 35 classes, 75466 train / 9981 valid / 20382 test.

    Reads ``ssc_{train,valid,test}.h5`` from ``<data_dir>/SSC/`` (tonic's layout) or
    ``<data_dir>/`` (checked at construction). Validation is the official
    ``ssc_valid.h5``; with ``official_valid=False`` it is held out of the training file
    instead, as for :class:`SHDDataModule` (``val_fraction``, ``split_by_speaker``,
    ``seed``).

    Args:
        data_dir: folder that holds ``SSC/`` (tonic's ``save_to``) or the files.
        official_valid: validate on ``ssc_valid.h5`` (True) or hold out of training.
        **kwargs: as :class:`SHDDataModule`.
    """

    dataset_name = "SSC"
    classes = 35

    def __init__(self, data_dir: str, *, official_valid: bool = True, **kwargs: Any) -> None:
        super().__init__(data_dir, val_file="valid" if official_valid else None, **kwargs)
        self.official_valid = official_valid
        self.save_hyperparameters()
        _describe_transform_in(self)


def _describe_transform_in(module: HeidelbergDataModule) -> None:
    """Checkpoints keep a data module's hyperparameters, loaded as plain data
    (``weights_only``): the transform is kept there by its description, not as an object."""
    if "transform" in module.hparams:
        module.hparams["transform"] = module.transform_text
