"""Yin-Yang generator (bit for bit against the published arrays) and DataModule."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_modules.data.yinyang import YinYangDataModule, make_yinyang, yinyang_class

PUBLISHED_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "yinyang"

# (file prefix, size, seed, sha256 of samples as <f8 bytes, sha256 of labels as <i8 bytes),
# the hashes taken from the published .npy files (lkriener/yin_yang_data_set, MIT) so
# that the check runs where the files are absent; the files themselves are not shipped.
PUBLISHED = [
    (
        "train",
        5000,
        42,
        "f5a4054d56f2a058f8250fba7ff9720458e1625db7af78a295e45701745b2228",
        "534d12acda4f9dbc7208a99d3646115a4aa7d74ca31d6d23f822079a568559b7",
    ),
    (
        "validation",
        1000,
        41,
        "5eac358bdf2122763dce3703a79f3005e56e46a4db25ec329a07333d0f7b8093",
        "5a4c2f605814a620f514c1091f10441ce562cd81e902ce701b3cf94ae7576f7d",
    ),
    (
        "test",
        1000,
        40,
        "7bab3ed668ed4992679cff6339fe21bfe7d0c921ddc6187eaa3bc6ef34b888d7",
        "daa0f8f4e3b37b1ddec2afee22f09afb768f0e575f3f568e7469f1ebc6af73c1",
    ),
]


def sha256(array: np.ndarray, dtype: str) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=dtype).tobytes()).hexdigest()


@pytest.mark.parametrize(("split", "size", "seed", "samples_sha", "labels_sha"), PUBLISHED)
def test_generator_reproduces_published_split(split, size, seed, samples_sha, labels_sha):
    samples, labels = make_yinyang(size, seed)
    assert samples.dtype == np.float64 and samples.shape == (size, 4)
    assert labels.dtype == np.int64 and labels.shape == (size,)
    assert sha256(samples, "<f8") == samples_sha
    assert sha256(labels, "<i8") == labels_sha
    if not PUBLISHED_DIR.is_dir():
        pytest.skip(f"published arrays not at {PUBLISHED_DIR}; compared by hash only")
    want_samples = np.load(PUBLISHED_DIR / f"{split}_samples.npy")
    want_labels = np.load(PUBLISHED_DIR / f"{split}_labels.npy")
    assert want_samples.dtype == samples.dtype and want_labels.dtype == labels.dtype
    # bit for bit: compare the raw 64-bit patterns, not float equality
    np.testing.assert_array_equal(samples.view(np.uint64), want_samples.view(np.uint64))
    np.testing.assert_array_equal(labels, want_labels)


def test_generated_points_follow_the_rules():
    samples, labels = make_yinyang(600, seed=3)
    x, y = samples[:, 0], samples[:, 1]
    np.testing.assert_array_equal(samples[:, 2], 1.0 - x)
    np.testing.assert_array_equal(samples[:, 3], 1.0 - y)
    assert (np.hypot(x - 0.5, y - 0.5) <= 0.5).all()
    assert all(yinyang_class(a, b) == c for a, b, c in zip(x, y, labels, strict=True))
    assert np.bincount(labels).min() > 150  # balanced by rejection sampling


def test_classes_at_known_points():
    assert yinyang_class(0.75, 0.5) == 2  # right dot centre
    assert yinyang_class(0.25, 0.5) == 2  # left dot centre
    assert yinyang_class(0.25, 0.5 + 0.15) == 1  # ring around the left dot
    assert yinyang_class(0.75, 0.5 + 0.15) == 0  # ring around the right dot
    assert yinyang_class(0.5, 0.95) == 1  # top
    assert yinyang_class(0.5, 0.05) == 0  # bottom


def test_datamodule_properties_need_no_data():
    dm = YinYangDataModule(num_steps=30, t_max=20.0)
    assert (dm.num_inputs, dm.num_classes, dm.num_steps) == (5, 3, 30)
    assert YinYangDataModule(bias_step=None).num_inputs == 4
    assert dm.datasets == {}


def test_datamodule_batches_encode_the_published_splits():
    dm = YinYangDataModule(batch_size=64, num_steps=30, t_min=1.0, t_max=21.0, bias_step=0)
    dm.setup("fit")
    dm.setup("test")
    spikes, labels = next(iter(dm.train_dataloader()))
    assert spikes.shape == (64, 30, 5) and spikes.dtype == torch.float32
    assert labels.shape == (64,) and labels.dtype == torch.int64
    assert (spikes.sum(dim=1) == 1).all()  # one spike per channel and sample

    for loader, (size, seed) in (
        (dm.val_dataloader(), (1000, 41)),
        (dm.test_dataloader(), (1000, 40)),
    ):
        samples, want_labels = make_yinyang(size, seed)
        spikes = torch.cat([s for s, _ in loader])
        labels = torch.cat([y for _, y in loader])
        np.testing.assert_array_equal(labels.numpy(), want_labels)  # in order
        steps = spikes.argmax(dim=1).numpy()  # (N, C) spike step of each channel
        np.testing.assert_array_equal(steps[:, :4], np.floor(1.0 + samples * 20.0 + 0.5))
        assert (steps[:, 4] == 0).all()  # bias spike


def test_linear_rounding_keeps_the_exact_feature_values():
    dm = YinYangDataModule(num_steps=12, t_min=0.0, t_max=10.0, bias_step=None, rounding="linear")
    assert dm.num_inputs == 4
    spikes, _ = next(iter(dm.val_dataloader()))
    samples, _ = make_yinyang(1000, 41)
    mean_time = (spikes * torch.arange(12.0)[None, :, None]).sum(dim=1)
    np.testing.assert_allclose(mean_time.numpy() / 10.0, samples[: len(spikes)], atol=1e-5)


def test_train_order_depends_on_seed_and_epoch_only():
    def first_labels(seed, epoch):
        dm = YinYangDataModule(batch_size=500, train_size=500, val_size=10, seed=seed)
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return next(iter(loader))[1]

    a = first_labels(0, 0)
    assert torch.equal(a, first_labels(0, 0))
    assert not torch.equal(a, first_labels(0, 1))
    assert not torch.equal(a, first_labels(1, 0))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_steps": 10, "t_max": 20.0}, "num_steps"),
        ({"bias_step": 100}, "bias_step"),
        ({"batch_size": 0}, "batch_size"),
        ({"t_min": 5.0, "t_max": 1.0}, "t_min"),
        ({"train_size": 0}, "train_size"),
        ({"rounding": "floor"}, "rounding"),
        ({"rounding": "linear", "num_steps": 39, "t_max": 38.3}, "ceil"),
        # numpy's RandomState refused these only when setup generated the split
        ({"train_seed": -1}, r"train_seed must lie in \[0, 2\*\*32 - 1\] \(a seed\), got -1"),
        ({"test_seed": 2**32}, r"test_seed must lie in \[0, 2\*\*32 - 1\]"),
        ({"seed": 2**64}, r"^seed must lie in \[0, 2\*\*32 - 1\]"),
        # features beyond [0, 1] failed in setup's latency encoding
        ({"r_big": 0.6, "r_small": 0.1}, r"r_big must be <= 0.5, got 0.6: the features"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        YinYangDataModule(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_steps": 2.5}, r"num_steps must be an int >= 1, got 2.5 \(float\)"),
        ({"batch_size": "64"}, r"batch_size must be an int >= 1, got '64' \(str\)"),
        ({"train_size": True}, r"train_size must be an int >= 1, got True \(bool\)"),
        ({"val_seed": 4.0}, r"val_seed must be an int"),
        ({"t_max": "40"}, r"t_max must be a finite number, got '40' \(str\)"),
        ({"bias_step": 0.5}, r"bias_step must be an int"),
        ({"r_small": None}, r"r_small must be a finite number"),
    ],
)
def test_wrong_types_fail_at_construction_naming_the_argument(kwargs, match):
    with pytest.raises(TypeError, match=match):
        YinYangDataModule(**kwargs)


def test_a_tiny_dot_radius_is_refused_instead_of_sampling_for_ever():
    # r = 1e-4: a dot sample would take ~1.6e7 draws (the generator seemed to hang)
    with pytest.raises(
        ValueError, match=r"r_small=0.0001 .* draws per dot sample; use r_small >= 0.00"
    ):
        make_yinyang(10, seed=0, r_small=1e-4)
    with pytest.raises(ValueError, match=r"r_small=0\.0001"):
        YinYangDataModule(r_small=1e-4)
    _, labels = make_yinyang(30, seed=0, r_small=0.01)  # ~1600 draws per dot: allowed
    assert set(labels.tolist()) == {0, 1, 2}
