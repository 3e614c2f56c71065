"""The binned-data cache: read back only for the same file and settings, never stale or
damaged, written atomically, optional."""

from __future__ import annotations

import importlib.util
import os
import warnings

import numpy as np
import pytest
import tonic.transforms
import torch

from lightning_modules.data.binned_cache import BinnedArrays, cache_path, read_cache
from lightning_modules.data.heidelberg import HeidelbergDataModule, SHDDataModule
from lightning_modules.data.synthetic import make_synthetic_heidelberg


@pytest.fixture
def shd_dir(tmp_path):
    return make_synthetic_heidelberg(
        tmp_path / "data", "SHD", num_samples={"train": 24, "test": 10}, events_per_sample=60,
        duration_s=0.9, seed=3,
    )  # fmt: skip


def dense(dm, split="test"):
    dm.setup("test" if split == "test" else "fit")
    data = dm.datasets[split]
    return torch.stack([data[i][0] for i in range(len(data))])


def entries(shd_dir):
    return sorted((shd_dir / "SHD" / "spsnn_cache").glob("*.npz"))


def no_binning(monkeypatch):
    """Makes binning a file an error: what loads must come from the cache."""

    def refuse(self, split):
        raise AssertionError(f"binned {split} again")

    monkeypatch.setattr(HeidelbergDataModule, "_bin_file", refuse)


def test_a_second_module_reads_the_cache_and_gets_the_same_numbers(shd_dir, monkeypatch):
    fresh = dense(SHDDataModule(shd_dir))
    assert [p.name.split("-")[0] for p in entries(shd_dir)] == ["shd_test"]
    counts = SHDDataModule(shd_dir)
    counts.setup("test")
    no_binning(monkeypatch)
    again = SHDDataModule(shd_dir)
    assert torch.equal(dense(again), fresh)
    assert again.event_counts == counts.event_counts
    assert not list((shd_dir / "SHD" / "spsnn_cache").glob("*.tmp"))  # nothing half-written


@pytest.mark.parametrize(
    "change",
    [
        {"time_bin_ms": 5.0},
        {"num_steps": 50},
        {"channel_bin": 7},
        {"transform": tonic.transforms.DropEvent(p=0.5)},
    ],
)
def test_a_changed_setting_never_reads_the_old_entry(shd_dir, change):
    dense(SHDDataModule(shd_dir))
    changed = SHDDataModule(shd_dir, **change)
    got = dense(changed)
    assert torch.equal(got, dense(SHDDataModule(shd_dir, cache=False, **change)))
    assert len(entries(shd_dir)) == 2


def test_a_changed_file_is_binned_again(shd_dir):
    before = dense(SHDDataModule(shd_dir))
    make_synthetic_heidelberg(  # the same names and sizes, other events
        shd_dir, "SHD", num_samples={"train": 24, "test": 10}, events_per_sample=60,
        duration_s=0.9, seed=99,
    )  # fmt: skip
    os.utime(shd_dir / "SHD" / "shd_test.h5", ns=(1, 1))  # even an old mtime
    after = dense(SHDDataModule(shd_dir))
    assert not torch.equal(before, after)
    assert torch.equal(after, dense(SHDDataModule(shd_dir, cache=False)))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "tamper"])
def test_a_damaged_entry_is_never_used(shd_dir, damage):
    fresh = dense(SHDDataModule(shd_dir))
    (entry,) = entries(shd_dir)
    if damage == "truncate":
        entry.write_bytes(entry.read_bytes()[:500])
    elif damage == "garbage":
        entry.write_bytes(b"not a cache entry")
    else:  # a whole file whose numbers do not add up: one bin moved outside the grid
        with np.load(entry) as stored:
            arrays = {name: stored[name] for name in stored.files}
        arrays["bins"][0] = 100 * 140
        np.savez(entry, **arrays)
    with pytest.warns(UserWarning, match=rf"ignoring the damaged cache entry {entry}"):
        again = dense(SHDDataModule(shd_dir))
    assert torch.equal(again, fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rewritten whole: read without a word
        assert torch.equal(dense(SHDDataModule(shd_dir)), fresh)


def test_a_key_mismatch_behind_the_same_name_is_not_trusted(shd_dir):
    dm = SHDDataModule(shd_dir)
    dense(dm)
    (entry,) = entries(shd_dir)
    other = {**dm.cache_key("test"), "num_steps": 1}
    header = dm.files["test"]
    assert read_cache(entry, other, num_bins=14000, labels=header.labels) is None
    assert isinstance(
        read_cache(entry, dm.cache_key("test"), num_bins=14000, labels=header.labels),
        BinnedArrays,
    )
    assert cache_path(dm.cache_dir, header.path, other) != entry


def test_cache_off_writes_nothing_and_cache_dir_moves_it(shd_dir, tmp_path):
    dense(SHDDataModule(shd_dir, cache=False))
    assert not (shd_dir / "SHD" / "spsnn_cache").exists()
    dense(SHDDataModule(shd_dir, cache_dir=str(tmp_path / "elsewhere")))
    assert len(list((tmp_path / "elsewhere").glob("shd_test-*.npz"))) == 1


def test_an_unwritable_cache_costs_a_warning_not_the_run(shd_dir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    dm = SHDDataModule(shd_dir, cache_dir=str(blocker / "cache"))
    with pytest.warns(UserWarning, match="cannot write the binned-data cache"):
        got = dense(dm)
    assert torch.equal(got, dense(SHDDataModule(shd_dir, cache=False)))


def test_cache_must_be_a_bool(shd_dir):
    with pytest.raises(TypeError, match="cache must be true or false, got 'no'"):
        SHDDataModule(shd_dir, cache="no")


# ------------------------------------------------ transforms the user edits
TRANSFORMS = '''
import numpy as np

SHIFT_US = {shift}


def helper(times):
    return times + SHIFT_US


def shift(events):
    """Moves every event later: what it computes is all in its code and what it reads."""
    events = events.copy()
    events["t"] = {body}
    return events
'''


def user_transform(folder, monkeypatch, shift=0, body="helper(events['t'])"):
    """``user_transforms.shift`` loaded from a module file written now (as a user's edited
    module is imported by a new run: same name, new code)."""
    monkeypatch.setattr("sys.dont_write_bytecode", True)
    path = folder / "user_transforms.py"
    path.write_text(TRANSFORMS.format(shift=shift, body=body))
    spec = importlib.util.spec_from_file_location("user_transforms", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.shift


@pytest.mark.parametrize(
    "edit",
    [
        {"body": "helper(events['t']) + 200_000"},  # the function's own body
        {"shift": 300_000},  # a module constant its helper reads
    ],
)
def test_an_edited_transform_function_is_binned_again(shd_dir, tmp_path, monkeypatch, edit):
    """Keyed by ``module.name`` alone, the second module read the first one's bins back."""
    before = dense(SHDDataModule(shd_dir, transform=user_transform(tmp_path, monkeypatch)))
    edited = user_transform(tmp_path, monkeypatch, **edit)
    after = dense(SHDDataModule(shd_dir, transform=edited))
    assert torch.equal(after, dense(SHDDataModule(shd_dir, transform=edited, cache=False)))
    assert not torch.equal(before, after)
    assert len(entries(shd_dir)) == 2
    unchanged = user_transform(tmp_path, monkeypatch, **edit)  # the same code again: cached
    no_binning(monkeypatch)
    assert torch.equal(dense(SHDDataModule(shd_dir, transform=unchanged)), after)


def test_a_transform_with_state_spsnn_cannot_record_is_not_cached(shd_dir):
    generator = np.random.default_rng(0)

    def drop_half(events):
        return events[generator.random(len(events)) < 0.5]

    name = f"{__name__}.test_a_transform_with_state_spsnn_cannot_record_is_not_cached"
    with pytest.raises(ValueError) as refused:
        SHDDataModule(shd_dir, transform=drop_half)
    assert str(refused.value) == (
        f"transform {name}.<locals>.drop_half cannot be cached: {name}.<locals>.drop_half's "
        "closure is a numpy.random._generator.Generator, whose state spsnn cannot record, so "
        "a cached binning could not tell when the transform changes; set cache=False (it "
        "bins again in every run), or keep only data (numbers, arrays, tonic transforms) in "
        "what the transform reads"
    )
    SHDDataModule(shd_dir, transform=drop_half, cache=False)  # the fix named works
