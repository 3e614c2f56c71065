"""Yin-Yang data set (Kriener et al. 2021): generator and spike-time DataModule.

The generator :func:`make_yinyang` reproduces the published arrays bit for bit for
the published sizes and seeds (train 5000 / 42, validation 1000 / 41, test 1000 / 40);
``tests/lightning_modules/data/test_yinyang.py`` checks that against the files.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from lightning_modules.data.encoding import LatencyRounding, latency_encode
from lightning_modules.data.splits import SplitDataModule
from spatial_layers.arguments import check_count as checked_int
from spatial_layers.arguments import check_number as checked_number
from spatial_layers.arguments import check_seed as checked_seed

CLASS_NAMES = ("yin", "yang", "dot")
"""Names of the class ids 0, 1, 2 as the published data set gives them."""
NUM_FEATURES = 4
"""(x, y, 1 - x, 1 - y)."""
MAX_EXPECTED_DRAWS = 10_000
"""Most points rejection sampling may expect to draw per sample of its rarest class."""


def check_radii(r_small: float, r_big: float) -> None:
    """Raises ValueError unless the radii give three classes rejection sampling can fill.

    A dot sample needs on average ``(2R)^2 / (2 pi r^2)`` draws from the square; with a
    tiny ``r_small`` the generator would seem to hang, so more than
    :data:`MAX_EXPECTED_DRAWS` is refused.
    """
    r_small, r_big = checked_number("r_small", r_small), checked_number("r_big", r_big)
    if not 0 < r_small < 0.5 * r_big:
        raise ValueError(f"need 0 < r_small < r_big / 2, got r_small={r_small}, r_big={r_big}")
    draws = (2 * r_big) ** 2 / (2 * np.pi * r_small**2)
    if draws > MAX_EXPECTED_DRAWS:
        smallest = 2 * r_big / np.sqrt(2 * np.pi * MAX_EXPECTED_DRAWS)
        raise ValueError(
            f"r_small={r_small} leaves the dots {1 / draws:.1e} of the square: about "
            f"{draws:.0f} draws per dot sample; use r_small >= {smallest:.3g} (published: "
            "0.1 with r_big 0.5)"
        )


def yinyang_class(x: float, y: float, r_small: float = 0.1, r_big: float = 0.5) -> int:
    """Class of a point (x, y) inside the big circle.

    With the dot centres ``(1.5 R, R)`` (right) and ``(0.5 R, R)`` (left):
    dot (2) if within ``r`` of either centre (strictly); otherwise 1 if within ``r``
    of the right dot, or ``r < d_left <= R / 2``, or ``y > R`` and ``d_right > R / 2``;
    else 0.

    >>> yinyang_class(0.75, 0.5), yinyang_class(0.5, 0.9), yinyang_class(0.5, 0.1)
    (2, 1, 0)
    """
    d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    if d_right < r_small or d_left < r_small:
        return 2
    in_right_dot = d_right <= r_small
    around_left_dot = r_small < d_left <= 0.5 * r_big
    upper_outer = y > r_big and d_right > 0.5 * r_big
    return int(in_right_dot or around_left_dot or upper_outer)


def make_yinyang(
    size: int, seed: int, r_small: float = 0.1, r_big: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Generate the Yin-Yang data set, class-balanced by rejection sampling.

    One ``numpy.random.RandomState(seed)`` serves the whole set. For each sample, in
    order: the goal class is drawn (``randint(3)``), then points
    ``(x, y) = rand(2) * 2 * r_big`` are drawn until one lies inside the big circle
    (distance to ``(r_big, r_big)`` at most ``r_big``) and has the goal class
    (:func:`yinyang_class`).

    Args:
        size: number of samples N.
        seed: seed of the RandomState (published: train 42, validation 41, test 40).
        r_small: radius r of the two dots.
        r_big: radius R of the big circle; points live in [0, 2R]^2.

    Returns:
        samples: (N, 4) float64 features ``(x, y, 1 - x, 1 - y)``.
        labels: (N,) int64 classes in {0, 1, 2}.

    >>> samples, labels = make_yinyang(3, seed=0)
    >>> samples.shape, labels.tolist()
    ((3, 4), [0, 2, 2])
    """
    checked_int("size", size, 0)
    check_radii(r_small, r_big)
    rng = np.random.RandomState(seed)
    samples = np.empty((size, NUM_FEATURES), dtype=np.float64)
    labels = np.empty(size, dtype=np.int64)
    for i in range(size):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * r_big
            if np.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
                continue
            if yinyang_class(x, y, r_small, r_big) == goal:
                break
        samples[i] = (x, y, 1.0 - x, 1.0 - y)
        labels[i] = goal
    return samples, labels


class YinYangDataModule(SplitDataModule):
    """Yin-Yang as spike times: 4 latency-coded features plus an optional bias spike.

    Each feature ``v`` in ``(x, y, 1 - x, 1 - y)`` (all in [0, 1]) spikes once at step
    ``round(t_min + v * (t_max - t_min))`` (or split between two steps with
    ``rounding="linear"``); with ``bias_step`` set, a fifth channel
    spikes at that step in every sample. The splits are the published ones, generated
    in :meth:`setup` (no files): train (``train_size``, ``train_seed``), validation
    (``val_size``, ``val_seed``) and test (``test_size``, ``test_seed``). Model
    selection uses the validation split only. Splits and loaders as
    :class:`~lightning_modules.data.splits.SplitDataModule`.

    Batches: ``(spikes, labels)`` with spikes float32 (B, T, C) where
    ``T = num_steps`` and ``C = 4 + (bias_step is not None)``, labels int64 (B,).

    Args:
        batch_size: samples per batch (all three loaders).
        num_steps: T, time steps per sample.
        t_min: spike step of a feature value 0.
        t_max: spike step of a feature value 1 (``round(t_max) <= num_steps - 1``).
        bias_step: step of the bias spike, or None for no bias channel (4 inputs,
            as SpSNN's 4-n-3 networks).
        rounding: "round": binary spikes at the nearest step; "linear": each spike's
            unit mass split between its two neighbouring steps, keeping the exact
            time (see :func:`~lightning_modules.data.encoding.latency_encode`).
            Rounding caps what a classifier can learn: on Yin-Yang, the best possible
            accuracy from inputs rounded onto S = t_max - t_min steps is about
            94 % (S = 20), 97.5 % (S = 40), 98.5 % (S = 60), 99.1 % (S = 100).
        train_size: training split size (published: 5000).
        val_size: validation split size (published: 1000).
        test_size: test split size (published: 1000).
        train_seed: generator seed of the training split (published: 42).
        val_seed: generator seed of the validation split (published: 41).
        test_seed: generator seed of the test split (published: 40).
        r_small: dot radius of the generator.
        r_big: circle radius of the generator.
        seed: seed of the training shuffle (order of epoch e depends on seed + e only).
        num_workers: DataLoader worker processes.
    """

    def __init__(
        self,
        batch_size: int = 32,
        num_steps: int = 60,
        t_min: float = 0.0,
        t_max: float = 40.0,
        bias_step: int | None = 0,
        rounding: LatencyRounding = "round",
        train_size: int = 5000,
        val_size: int = 1000,
        test_size: int = 1000,
        train_seed: int = 42,
        val_seed: int = 41,
        test_seed: int = 40,
        r_small: float = 0.1,
        r_big: float = 0.5,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_steps, seed, num_workers)
        checked_number("t_min", t_min), checked_number("t_max", t_max)
        if bias_step is not None:
            checked_int("bias_step", bias_step)
        check_radii(r_small, r_big)
        if r_big > 0.5:
            raise ValueError(
                f"r_big must be <= 0.5, got {r_big}: the features x, y, 1 - x, 1 - y of points "
                "in [0, 2 r_big]^2 must lie in [0, 1] to be latency-coded (published: 0.5)"
            )
        if not 0 <= t_min <= t_max or np.floor(t_max + 0.5) > num_steps - 1:
            raise ValueError(
                f"need 0 <= t_min <= t_max and round(t_max) <= num_steps - 1, got "
                f"t_min={t_min}, t_max={t_max}, num_steps={num_steps}"
            )
        if bias_step is not None and not 0 <= bias_step < num_steps:
            raise ValueError(f"bias_step must lie in [0, num_steps={num_steps}), got {bias_step}")
        if rounding not in ("round", "linear"):
            raise ValueError(f"rounding must be one of 'round', 'linear', got {rounding!r}")
        if rounding == "linear" and np.ceil(t_max) > num_steps - 1:
            raise ValueError(
                f"rounding='linear' needs ceil(t_max) <= num_steps - 1, got t_max={t_max}, "
                f"num_steps={num_steps}"
            )
        sizes = {"train": train_size, "val": val_size, "test": test_size}
        seeds = {"train": train_seed, "val": val_seed, "test": test_seed}
        for split in sizes:
            checked_int(f"{split}_size", sizes[split], 1)
            checked_seed(f"{split}_seed", seeds[split])
        self.save_hyperparameters()
        self.t_min = t_min
        self.t_max = t_max
        self.bias_step = bias_step
        self.rounding = rounding
        self.sizes, self.seeds = sizes, seeds
        self.r_small = r_small
        self.r_big = r_big

    @property
    def num_inputs(self) -> int:
        """C: 4 feature channels, plus 1 with a bias spike."""
        return NUM_FEATURES + (self.bias_step is not None)

    @property
    def num_classes(self) -> int:
        """3 (yin, yang, dot)."""
        return len(CLASS_NAMES)

    def encoding_settings(self) -> dict[str, object]:
        """Spike-time encoding and the data set's radii."""
        names = ("t_min", "t_max", "bias_step", "rounding", "r_small", "r_big")
        return {name: getattr(self, name) for name in names}

    def encode(self, samples: np.ndarray) -> torch.Tensor:
        """(N, 4) features in [0, 1] -> (N, T, C) float32 spikes (this module's encoding)."""
        return latency_encode(
            samples,
            num_steps=self.num_steps,
            t_min=self.t_min,
            t_max=self.t_max,
            bias_step=self.bias_step,
            rounding=self.rounding,
        )

    def build_split(self, split: str) -> None:
        """Generates and encodes ``split`` from its published size and seed."""
        samples, labels = make_yinyang(
            self.sizes[split], self.seeds[split], r_small=self.r_small, r_big=self.r_big
        )
        self.datasets[split] = TensorDataset(self.encode(samples), torch.from_numpy(labels))
