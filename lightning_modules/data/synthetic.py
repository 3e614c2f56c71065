"""Tiny files in the exact SHD / SSC HDF5 layout, for tests and smoke runs.

The real files cannot be downloaded everywhere, so tests write small ones with the
same dataset names and dtypes and the file names and folders tonic expects::

    spikes/times   (N,) variable-length float16, seconds from the sample onset
    spikes/units   (N,) variable-length uint16, 0..699
    labels         (N,) uint8 class ids
    extra/speaker  (N,) uint16 speaker ids
    extra/keys     (K,) byte strings, the word of each class id
    extra/meta_info/{gender, age, body_height}   per speaker (SHD only)

The samples are learnable on purpose: class ``k`` fires mostly in a band of units
around ``(k + 0.5) * 700 / K``, so an end-to-end fit on them can be checked to learn.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from lightning_modules.data.heidelberg import NUM_UNITS, data_file

NUM_CLASSES = {"SHD": 20, "SSC": 35}


def write_heidelberg_file(
    path: str | os.PathLike,
    times: Sequence[np.ndarray],
    units: Sequence[np.ndarray],
    labels: Sequence[int],
    speakers: Sequence[int],
    keys: Sequence[str],
    *,
    meta_info: bool = True,
) -> Path:
    """Write one partition in the SHD/SSC layout (see the module docstring).

    Args:
        path: the ``.h5`` file to create (parents are created).
        times: per sample, (E_i,) spike times in seconds (stored as float16).
        units: per sample, (E_i,) unit ids in [0, 700) (stored as uint16).
        labels: (N,) class ids.
        speakers: (N,) speaker ids.
        keys: the word of each class id.
        meta_info: write ``extra/meta_info`` (SHD has it, SSC does not).

    Returns:
        the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(labels)
    if not len(times) == len(units) == len(speakers) == n:
        raise ValueError("times, units, labels and speakers need one entry per sample")
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float16))
        u = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(n):
            t[i] = np.asarray(times[i], dtype=np.float16)
            u[i] = np.asarray(units[i], dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))
        f.create_dataset("extra/speaker", data=np.asarray(speakers, dtype=np.uint16))
        f.create_dataset("extra/keys", data=np.array([k.encode() for k in keys]))
        if meta_info:
            num_speakers = int(np.max(speakers)) + 1 if n else 0
            f.create_dataset(
                "extra/meta_info/gender",
                data=np.array([b"female", b"male"] * num_speakers)[:num_speakers],
            )
            f.create_dataset("extra/meta_info/age", data=np.full(num_speakers, 30, np.uint8))
            f.create_dataset(
                "extra/meta_info/body_height", data=np.full(num_speakers, 175, np.uint8)
            )
    return path


def make_synthetic_heidelberg(
    data_dir: str | os.PathLike,
    dataset: str = "SHD",
    *,
    num_samples: Mapping[str, int] | None = None,
    speakers: Mapping[str, Sequence[int]] | None = None,
    events_per_sample: int = 300,
    duration_s: float = 1.2,
    seed: int = 0,
) -> Path:
    """Write a small learnable SHD or SSC data set where the DataModules look for it.

    Args:
        data_dir: the DataModule's ``data_dir`` (files go to ``<data_dir>/<dataset>/``).
        dataset: "SHD" (train, test) or "SSC" (train, valid, test).
        num_samples: samples per file split; default 60 train and 20 in each other split.
        speakers: speaker ids per file split, assigned round-robin; default train
            speakers 0..5 and distinct ones for the other splits (as in SHD).
        events_per_sample: spikes per sample.
        duration_s: spike times are uniform in [0, duration_s) seconds.
        seed: numpy seed.

    Returns:
        ``Path(data_dir)``.

    Class ``k`` (of 20 for SHD, 35 for SSC) fires 80 % of its spikes in units
    ``center_k +- 20`` with ``center_k = (k + 0.5) * 700 / K``, the rest anywhere.
    """
    if dataset not in NUM_CLASSES:
        raise ValueError(f"dataset must be one of {sorted(NUM_CLASSES)}, got {dataset!r}")
    splits = ("train", "test") if dataset == "SHD" else ("train", "valid", "test")
    num_samples = dict(num_samples or {s: 60 if s == "train" else 20 for s in splits})
    default_speakers = {"train": range(6), "valid": range(6, 8), "test": range(8, 10)}
    speakers = dict(speakers or {s: default_speakers[s] for s in splits})
    num_classes = NUM_CLASSES[dataset]
    rng = np.random.default_rng(seed)
    keys = [f"word{k}" for k in range(num_classes)]
    for split in splits:
        n = num_samples[split]
        labels = np.arange(n) % num_classes
        rng.shuffle(labels)
        split_speakers = np.asarray(speakers[split])[np.arange(n) % len(speakers[split])]
        times, units = [], []
        for label in labels:
            center = (label + 0.5) * NUM_UNITS / num_classes
            in_band = rng.random(events_per_sample) < 0.8
            u = np.where(
                in_band,
                np.clip(np.round(center + rng.uniform(-20, 20, events_per_sample)), 0, 699),
                rng.integers(0, NUM_UNITS, events_per_sample),
            )
            t = np.sort(rng.uniform(0.0, duration_s, events_per_sample))
            times.append(t)
            units.append(u)
        write_heidelberg_file(
            data_file(data_dir, dataset, split),
            times,
            units,
            labels,
            split_speakers,
            keys,
            meta_info=dataset == "SHD",
        )
    return Path(data_dir)
