"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) through tonic.

The real HDF5 files are read unchanged, located and opened by tonic's ``SHD`` /
``SSC`` dataset classes, in tonic's folder layout::

    <data_dir>/SHD/shd_train.h5    <data_dir>/SHD/shd_test.h5
    <data_dir>/SSC/ssc_train.h5    <data_dir>/SSC/ssc_valid.h5    <data_dir>/SSC/ssc_test.h5

Nothing is ever downloaded: the DataModules check the files exist when they are
built and raise :class:`HeidelbergDataMissingError` (a ``FileNotFoundError``) naming
the exact paths and where to get the files, before tonic or h5py touch anything.

Events are read as tonic's ``__getitem__`` gives them (microseconds, unit ids), but
with the file opened once (:func:`iter_hsd_events`, checked against tonic sample by
sample). Each sample's events are binned once, in ``setup``, by
:func:`lightning_modules.data.encoding.event_bin_indices`: units pooled by
``channel_bin`` (700 -> 140 for 5), time cut into ``num_steps`` bins of
``time_bin_ms`` from the sample onset (events after the window are dropped), counts
kept as floats (as DCLS-delays bins the data; its tonic ``ToFrame`` starts the first
bin at the first event, ours start at the onset, t = 0). Samples are stored sparsely
and made dense per item: (T, C) float32.

Validation never touches a test file. SHD has no official validation split, so it is
held out of the training file: whole speakers when ``split_by_speaker`` (seeded),
otherwise random samples. SSC uses its official ``ssc_valid.h5``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np
import tonic.datasets
import torch
from torch.utils.data import Dataset, Subset

from lightning_modules.data.encoding import event_bin_indices, num_binned_channels
from lightning_modules.data.splits import SplitDataModule, checked_int, checked_number

NUM_UNITS = 700
"""Input units (cochlea channels) of SHD and SSC."""

DATA_URL = "https://zenkelab.org/datasets/"
"""Where the Zenke lab publishes the files (tonic downloads from here too)."""


class HeidelbergDataMissingError(FileNotFoundError):
    """An SHD/SSC file is not where tonic's layout puts it (nothing is downloaded)."""


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


def data_file(data_dir: str | os.PathLike, dataset: str, split: str) -> Path:
    """Path tonic reads for ``dataset`` ("SHD" or "SSC") and ``split`` ("train",
    "valid" (SSC only) or "test"): ``<data_dir>/<dataset>/<dataset lower>_<split>.h5``.

    >>> data_file("/data", "SHD", "train").as_posix()
    '/data/SHD/shd_train.h5'
    """
    tonic_class = {"SHD": tonic.datasets.SHD, "SSC": tonic.datasets.SSC}[dataset]
    archive = getattr(tonic_class, f"{split}_zip")  # e.g. "shd_train.h5.zip"
    return Path(os.path.expanduser(data_dir)) / dataset / archive.removesuffix(".zip")


def _tonic_fetch_command(dataset: str, data_dir: str, splits: Sequence[str]) -> str:
    if dataset == "SHD":
        calls = [f"tonic.datasets.SHD({data_dir!r}, train={s == 'train'})" for s in splits]
    else:
        calls = [f"tonic.datasets.SSC({data_dir!r}, split={s!r})" for s in splits]
    return 'python -c "import tonic; ' + "; ".join(calls) + '"'


def check_data_files(data_dir: str | os.PathLike, dataset: str, splits: Sequence[str]) -> None:
    """Raise :class:`HeidelbergDataMissingError` unless every split's file exists.

    The message names the ``data_dir`` argument, every missing path, the download
    page and the tonic command that fetches the files on a machine with internet.
    """
    missing = [data_file(data_dir, dataset, s) for s in splits]
    missing = [p for p in missing if not p.is_file()]
    if not missing:
        return
    root = Path(os.path.expanduser(data_dir))
    state = "does not exist" if not root.is_dir() else "lacks them"
    zips = ", ".join(p.name + ".zip" for p in missing)
    raise HeidelbergDataMissingError(
        f"{dataset} data not found (data_dir={str(data_dir)!r} {state}). Expected:\n"
        + "".join(f"  {p}\n" for p in missing)
        + f"spsnn reads <data_dir>/{dataset}/ with tonic and never downloads: set `data_dir` "
        f"to the folder that contains {dataset}/.\n"
        f"Get the files from {DATA_URL} ({zips}) and unzip them into {root / dataset}/, "
        f"or on a machine with internet access let tonic download and unzip them "
        f"(constructing tonic.datasets.{dataset} fetches a missing file):\n"
        f"  {_tonic_fetch_command(dataset, str(root), splits)}\n"
        f"then copy that {dataset}/ folder into {root}/."
    )


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
        raise ValueError(f"need at least 2 training samples to hold some out, got {n}")
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
    returns them, read with the file opened once.

    tonic's ``dataset[i]`` opens the HDF5 file for every sample (~6 ms each: ~1 min for
    SHD's training file, ~10 min for SSC's); this reads the same file tonic located,
    ``chunk_size`` samples at a time, and applies tonic's conversion (seconds ->
    ``float64 * 1e6`` truncated to int64 microseconds). A test checks it equals
    ``dataset[i]`` sample by sample.

    Yields:
        per sample: times (E,) int64 microseconds, units (E,) int64.
    """
    path = os.path.join(dataset.location_on_system, dataset.data_filename)
    with h5py.File(path, "r") as f:
        times, units = f["spikes/times"], f["spikes/units"]
        for start in range(0, len(times), chunk_size):
            stop = start + chunk_size
            for t, u in zip(times[start:stop], units[start:stop], strict=True):
                yield (t.astype(np.float64) * 1e6).astype(np.int64), u.astype(np.int64)


def read_hsd_labels(dataset: tonic.datasets.HSD) -> tuple[np.ndarray, np.ndarray]:
    """(N,) int64 labels and (N,) speaker ids of a tonic SHD/SSC dataset."""
    path = os.path.join(dataset.location_on_system, dataset.data_filename)
    with h5py.File(path, "r") as f:
        labels = f["labels"][()].astype(np.int64)
    # tonic 1.7 exposes `speaker` on SHD only; both classes read it into `_speaker`.
    return labels, np.asarray(dataset._speaker)


class BinnedSpikes(Dataset):
    """Binned samples stored sparsely; items are dense ``(spikes (T, C) float32, label)``.

    Args:
        bins: per sample, the flat indices ``step * C + channel`` of its events (as
            :func:`~lightning_modules.data.encoding.event_bin_indices` returns them;
            repeats count). Consumed one sample at a time, so a generator keeps the
            raw events of only one sample in memory.
        labels: (N,) class ids.
        num_steps: T.
        num_channels: C.
    """

    def __init__(
        self, bins: Iterable[np.ndarray], labels: np.ndarray, num_steps: int, num_channels: int
    ) -> None:
        self.num_steps = num_steps
        self.num_channels = num_channels
        size = num_steps * num_channels
        # Per sample: its distinct bins (int32) and their counts, concatenated (CSR-like).
        uniques, counts = [np.empty(0, np.int32)], [np.empty(0, np.float32)]
        for flat in bins:
            hist = np.bincount(flat, minlength=size)
            nonzero = np.flatnonzero(hist)
            uniques.append(nonzero.astype(np.int32))
            counts.append(hist[nonzero].astype(np.float32))
        if len(uniques) - 1 != len(labels):
            raise ValueError(f"{len(uniques) - 1} samples but {len(labels)} labels")
        self.offsets = np.cumsum([0] + [len(u) for u in uniques[1:]])
        self.bins = torch.from_numpy(np.concatenate(uniques))
        self.counts = torch.from_numpy(np.concatenate(counts))
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start, stop = self.offsets[index], self.offsets[index + 1]
        dense = torch.zeros(self.num_steps * self.num_channels, dtype=torch.float32)
        dense[self.bins[start:stop].long()] = self.counts[start:stop]
        return dense.view(self.num_steps, self.num_channels), self.labels[index]


class HeidelbergDataModule(SplitDataModule):
    """SHD / SSC through tonic: file checks, reading, binning, validation split.

    The dataset (``dataset_name``, ``classes``, :meth:`tonic_dataset`) comes from
    the subclass, :class:`SHDDataModule` or :class:`SSCDataModule`; splits and
    loaders from :class:`~lightning_modules.data.splits.SplitDataModule`.
    Every file the module will read is checked when it is built (see
    :func:`check_data_files`).

    Batches: ``(spikes, labels)``, spikes float32 (B, T, C) event counts with
    ``T = num_steps``, ``C = ceil(700 / channel_bin)``; labels int64 (B,).

    Args:
        data_dir: folder that holds ``SHD/`` or ``SSC/`` (tonic's ``save_to``).
        batch_size: samples per batch.
        channel_bin: input units pooled into one channel (5: 700 -> 140).
        time_bin_ms: width of one time step in ms (10: 1 s -> 100 steps).
        num_steps: T; events after ``num_steps * time_bin_ms`` ms are dropped.
        val_fraction: share of the training file held out for validation.
        split_by_speaker: hold out whole speakers (True) or random samples.
        seed: seed of the validation split and of the training shuffle.
        num_workers: DataLoader worker processes.
        val_file: the file split validation reads (``"valid"``: SSC's official
            one), or None to hold validation out of the training file; set by
            the subclass, not a user option.
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
        *,
        val_file: str | None = None,
    ) -> None:
        super().__init__(batch_size, num_steps, seed, num_workers)
        channel_bin = checked_int("channel_bin", channel_bin, 1)
        if checked_number("time_bin_ms", time_bin_ms) <= 0:
            raise ValueError(f"time_bin_ms must be > 0, got {time_bin_ms}")
        if not 0.0 < checked_number("val_fraction", val_fraction) < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        required = ("train", "test") if val_file is None else ("train", val_file, "test")
        check_data_files(data_dir, self.dataset_name, required)
        self.data_dir = str(data_dir)
        self.channel_bin = channel_bin
        self.time_bin_ms = time_bin_ms
        self.val_fraction = val_fraction
        self.split_by_speaker = split_by_speaker
        self.val_file = val_file
        # Speaker ids held out for validation, once setup() has made a held-out split.
        self.val_speakers: np.ndarray | None = None

    @property
    def num_inputs(self) -> int:
        """C = ceil(700 / channel_bin)."""
        return num_binned_channels(NUM_UNITS, self.channel_bin)

    @property
    def num_classes(self) -> int:
        """20 (SHD) or 35 (SSC)."""
        return self.classes

    def encoding_settings(self) -> dict[str, object]:
        """The data set and its binning."""
        return {
            "dataset": self.dataset_name,
            "time_bin_ms": self.time_bin_ms,
            "channel_bin": self.channel_bin,
        }

    def tonic_dataset(self, split: str) -> tonic.datasets.HSD:
        """tonic's dataset of file split ``split`` ("train", "valid" or "test")."""
        raise NotImplementedError

    def read_split(self, split: str) -> tuple[BinnedSpikes, np.ndarray]:
        """Read one file ("train", "valid" or "test") through tonic and bin it.

        Returns:
            the binned samples and their (N,) speaker ids.
        """
        check_data_files(self.data_dir, self.dataset_name, (split,))
        source = self.tonic_dataset(split)
        labels, speakers = read_hsd_labels(source)
        bins = (
            event_bin_indices(
                times_us,
                units,
                time_bin_ms=self.time_bin_ms,
                num_steps=self.num_steps,
                channel_bin=self.channel_bin,
                num_units=NUM_UNITS,
            )
            for times_us, units in iter_hsd_events(source)
        )
        return BinnedSpikes(bins, labels, self.num_steps, self.num_inputs), speakers

    def build_split(self, split: str) -> None:
        """Reads and bins ``split``'s file; a validation set held out of the training
        file fills ``"train"`` and ``"val"`` together."""
        if split == "test":
            self.datasets["test"] = self.read_split("test")[0]
        elif self.val_file is not None:
            file_split = "train" if split == "train" else self.val_file
            self.datasets[split] = self.read_split(file_split)[0]
        else:
            full, speakers = self.read_split("train")
            train_idx, val_idx = split_train_val(
                speakers,
                val_fraction=self.val_fraction,
                split_by_speaker=self.split_by_speaker,
                seed=self.seed,
            )
            self.datasets["train"] = Subset(full, train_idx.tolist())
            self.datasets["val"] = Subset(full, val_idx.tolist())
            self.val_speakers = np.unique(speakers[val_idx])


class SHDDataModule(HeidelbergDataModule):
    """Spiking Heidelberg Digits: 20 classes, 8156 train / 2264 test samples.

    Reads ``<data_dir>/SHD/shd_train.h5`` and ``shd_test.h5`` with tonic (checked at
    construction; see :func:`check_data_files`). Validation is held out of the training
    file: whole speakers when ``split_by_speaker`` (SHD's training file has 10),
    random samples otherwise; seeded by ``seed``. The test file is only used for testing.

    Args:
        data_dir: folder that holds ``SHD/`` (tonic's ``save_to``).
        **kwargs: ``batch_size``, ``channel_bin``, ``time_bin_ms``, ``num_steps``,
            ``val_fraction``, ``split_by_speaker``, ``seed``, ``num_workers``:
            see :class:`HeidelbergDataModule` (the CLI lists them too).
    """

    dataset_name = "SHD"
    classes = 20

    def __init__(self, data_dir: str, **kwargs: Any) -> None:
        super().__init__(data_dir, val_file=None, **kwargs)
        self.save_hyperparameters()

    def tonic_dataset(self, split: str) -> tonic.datasets.HSD:
        return SHD(self.data_dir, train=split == "train")


class SSCDataModule(HeidelbergDataModule):
    """Spiking Speech Commands: 35 classes, 75466 train / 9981 valid / 20382 test.

    Reads ``<data_dir>/SSC/ssc_{train,valid,test}.h5`` with tonic (checked at
    construction). Validation is the official ``ssc_valid.h5``; with
    ``official_valid=False`` it is held out of the training file instead, as for
    :class:`SHDDataModule` (``val_fraction``, ``split_by_speaker``, ``seed``).

    Args:
        data_dir: folder that holds ``SSC/`` (tonic's ``save_to``).
        official_valid: validate on ``ssc_valid.h5`` (True) or hold out of training.
        **kwargs: as :class:`SHDDataModule`.
    """

    dataset_name = "SSC"
    classes = 35

    def __init__(self, data_dir: str, *, official_valid: bool = True, **kwargs: Any) -> None:
        super().__init__(data_dir, val_file="valid" if official_valid else None, **kwargs)
        self.official_valid = official_valid
        self.save_hyperparameters()

    def tonic_dataset(self, split: str) -> tonic.datasets.HSD:
        return SSC(self.data_dir, split=split)
