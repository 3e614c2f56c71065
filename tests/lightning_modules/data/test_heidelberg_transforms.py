"""tonic event transforms in the SHD/SSC DataModules: what they receive, what follows."""

from __future__ import annotations

import numpy as np
import pytest
import tonic.transforms
import torch

from lightning_modules.data.encoding import bin_events
from lightning_modules.data.heidelberg import SHD, SHDDataModule, SSCDataModule
from lightning_modules.data.synthetic import make_synthetic_heidelberg


@pytest.fixture
def shd_dir(tmp_path):
    return make_synthetic_heidelberg(
        tmp_path, "SHD", num_samples={"train": 30, "test": 12}, events_per_sample=80,
        duration_s=0.9, seed=4,
    )  # fmt: skip


class Recorder:
    """Keeps what it receives, returns it unchanged; states itself in its repr."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def __call__(self, events: np.ndarray) -> np.ndarray:
        self.seen.append(events.copy())
        return events

    def __repr__(self) -> str:
        return "Recorder()"


class Shift:
    """Moves every event by ``dt`` microseconds."""

    def __init__(self, dt: int) -> None:
        self.dt = dt

    def __call__(self, events: np.ndarray) -> np.ndarray:
        events = events.copy()
        events["t"] += self.dt
        return events

    def __repr__(self) -> str:
        return f"Shift(dt={self.dt})"


def test_a_transform_receives_tonics_events_in_file_order(shd_dir):
    recorder = Recorder()
    dm = SHDDataModule(shd_dir, transform=recorder, cache=False)
    dm.setup("test")
    source = SHD(str(shd_dir), train=False)
    seen = recorder.seen[1:]  # the first is the construction's 3-event check
    assert len(seen) == len(source)
    for index, events in enumerate(seen):
        expected, _ = source[index]  # tonic's own __getitem__
        assert events.dtype == expected.dtype and events.dtype.names == ("t", "x", "p")
        np.testing.assert_array_equal(events, expected)


def test_binning_follows_the_transform_as_on_tonics_output(shd_dir):
    transform = tonic.transforms.Compose(
        [tonic.transforms.Downsample(time_factor=0.5), tonic.transforms.DropEvent(p=0.3)]
    )
    dm = SHDDataModule(shd_dir, transform=transform, cache=False, seed=5)
    dm.setup("test")
    got = torch.stack([dm.datasets["test"][i][0] for i in range(12)]).numpy()
    # the same draws through tonic's dataset: numpy seeded as the DataModule seeds it
    source = SHD(str(shd_dir), train=False, transform=transform)
    np.random.seed(dm._transform_seed("test"))
    want = np.stack(
        [
            bin_events(ev["t"], ev["x"], time_bin_ms=10.0, num_steps=100, channel_bin=5)
            for ev in (source[i][0] for i in range(12))
        ]
    )
    np.testing.assert_array_equal(got, want)
    counts = dm.event_counts["test"]
    assert counts["events_read"] == 12 * 80
    assert counts["events_binned"] == int(want.sum()) < 12 * 80  # DropEvent dropped some


def test_a_random_transform_is_one_seeded_draw_that_leaves_numpy_alone(shd_dir):
    def draw(seed):
        dm = SHDDataModule(shd_dir, transform=tonic.transforms.DropEvent(p=0.5), seed=seed,
                           cache=False)  # fmt: skip
        dm.setup("test")
        return torch.stack([dm.datasets["test"][i][0] for i in range(12)])

    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = draw(0)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    assert torch.equal(first, draw(0))
    assert not torch.equal(first, draw(1))


def test_the_transform_is_recorded_by_its_repr(shd_dir):
    plain = SHDDataModule(shd_dir)
    assert "transform" not in plain.input_settings  # checkpoints of older runs still match
    dm = SHDDataModule(shd_dir, transform=tonic.transforms.DropEvent(p=0.1))
    assert dm.input_settings["transform"] == "DropEvent(p=0.1)"
    assert dm.hparams["transform"] == "DropEvent(p=0.1)"  # plain data in checkpoints
    composed = tonic.transforms.Compose([Shift(5), tonic.transforms.DropEvent(p=0.2)])
    text = SHDDataModule(shd_dir, transform=composed).input_settings["transform"]
    assert text == "Compose( Shift(dt=5) DropEvent(p=0.2) )"


def named_function(events):
    return events


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        (lambda events: events, r"has no descriptive repr: spsnn records a transform by its"),
        (object(), r"transform must be callable \(a tonic transform\), got <object object"),
        (
            tonic.transforms.ToFrame(sensor_size=(700, 1, 1), n_time_bins=4),
            r"returned ndarray of shape \(4, 1, 700\) for a 3-event test sample, not events",
        ),
        (
            tonic.transforms.ToSparseTensor(sensor_size=(700, 1, 1)),
            r"failed on a 3-event test sample|for a 3-event test sample, not events",
        ),
    ],
)
def test_transforms_that_cannot_be_binned_are_refused_at_construction(shd_dir, transform, message):
    with pytest.raises(ValueError, match=message):
        SHDDataModule(shd_dir, transform=transform)


def test_a_named_function_is_recorded_by_name(shd_dir):
    dm = SHDDataModule(shd_dir, transform=named_function)
    assert dm.input_settings["transform"].endswith("test_heidelberg_transforms.named_function")


def test_events_a_transform_moves_off_the_grid_are_counted(shd_dir, recwarn):
    dm = SSCDataModule(
        make_synthetic_heidelberg(
            shd_dir / "ssc", "SSC", num_samples={"train": 10, "valid": 5, "test": 5},
            events_per_sample=50, duration_s=0.9,
        ),
        transform=Shift(-300_000),
    )  # fmt: skip
    dm.setup("fit")
    counts = dm.event_counts
    assert set(counts) == {"train", "val", "test"}
    for split in counts.values():
        lost = split["events_lost"]
        assert lost["before_onset"] > 0 and lost["after_window"] == 0
        assert split["events_kept"] + lost["before_onset"] == split["events_binned"]
    warned = [str(w.message) for w in recwarn if "moves events off the grid" in str(w.message)]
    assert len(warned) == 3 and "the transform Shift(dt=-300000)" in warned[0]


def test_a_transform_that_removes_every_event_stops_setup(shd_dir):
    dm = SHDDataModule(shd_dir, transform=tonic.transforms.DropEvent(p=1.0), cache=False)
    with pytest.raises(ValueError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert message.startswith(f"SHD train split ({shd_dir / 'SHD' / 'shd_train.h5'}): binning")
    assert "the transform DropEvent(p=1.0) removes" in message
    assert "samples keep no event (all-zero input): too little input" in message


def test_a_file_changed_after_construction_is_checked_again(shd_dir):
    dm = SHDDataModule(shd_dir)
    test = shd_dir / "SHD" / "shd_test.h5"
    test.write_bytes(test.read_bytes()[:100])
    with pytest.raises(ValueError, match=rf"{test}: not a readable HDF5 file"):
        dm.setup("test")
