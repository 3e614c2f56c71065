"""SHD / SSC DataModules on tiny files written in the exact Heidelberg layout."""

import math

import h5py
import lightning as L
import numpy as np
import pytest
import torch

from lightning_modules.data.heidelberg import (
    SHD,
    SSC,
    HeidelbergDataMissingError,
    SHDDataModule,
    SSCDataModule,
    iter_hsd_events,
    split_train_val,
)
from lightning_modules.data.synthetic import make_synthetic_heidelberg, write_heidelberg_file


@pytest.fixture
def shd_dir(tmp_path):
    """SHD files: 60 train samples from speakers 0..5, 20 test samples from 8, 9."""
    return make_synthetic_heidelberg(tmp_path, "SHD", events_per_sample=200, seed=1)


@pytest.fixture
def ssc_dir(tmp_path):
    return make_synthetic_heidelberg(
        tmp_path, "SSC", num_samples={"train": 70, "valid": 35, "test": 35}, seed=2
    )


def naive_binned(path, time_bin_ms, num_steps, channel_bin):
    """Read the file with h5py directly and bin event by event, in integer microseconds."""
    with h5py.File(path, "r") as f:
        times, units, labels = f["spikes/times"][:], f["spikes/units"][:], f["labels"][:]
    bin_us = round(time_bin_ms * 1000)
    out = np.zeros((len(labels), num_steps, math.ceil(700 / channel_bin)), np.float32)
    for i, (ts, us) in enumerate(zip(times, units, strict=True)):
        for t, u in zip(ts.tolist(), us.tolist(), strict=True):
            step = int(t * 1e6) // bin_us  # seconds -> whole microseconds -> step
            if step < num_steps:
                out[i, step, u // channel_bin] += 1
    return out, labels.astype(np.int64)


def collect(loader):
    spikes, labels = zip(*loader, strict=True)
    return torch.cat(spikes), torch.cat(labels)


def test_written_file_has_the_heidelberg_layout(shd_dir):
    with h5py.File(shd_dir / "SHD" / "shd_train.h5", "r") as f:
        assert f["spikes/times"].dtype.metadata["vlen"] == np.float16
        assert f["spikes/units"].dtype.metadata["vlen"] == np.uint16
        assert f["labels"].dtype == np.uint8
        assert {"speaker", "keys", "meta_info"} <= set(f["extra"])
        assert len(f["extra/keys"]) == 20


def test_properties_need_no_data(shd_dir):
    dm = SHDDataModule(shd_dir, batch_size=8, channel_bin=5, time_bin_ms=10.0, num_steps=100)
    assert (dm.num_inputs, dm.num_classes, dm.num_steps) == (140, 20, 100)
    assert dm.datasets == {}
    assert SHDDataModule(shd_dir, channel_bin=3).num_inputs == 234  # ceil(700 / 3)
    assert SSCDataModule.classes == 35


def test_bulk_reader_equals_tonic_getitem(shd_dir):
    source = SHD(str(shd_dir), train=True)
    for index, (times_us, units) in enumerate(iter_hsd_events(source, chunk_size=7)):
        events, _ = source[index]
        np.testing.assert_array_equal(times_us, events["t"])
        np.testing.assert_array_equal(units, events["x"])
    assert index == len(source) - 1


@pytest.mark.parametrize(
    ("time_bin_ms", "num_steps", "channel_bin"), [(10.0, 100, 5), (4.0, 200, 7)]
)
def test_shd_batches_are_binned_events(shd_dir, time_bin_ms, num_steps, channel_bin):
    dm = SHDDataModule(
        shd_dir,
        batch_size=16,
        channel_bin=channel_bin,
        time_bin_ms=time_bin_ms,
        num_steps=num_steps,
    )
    dm.setup("fit")
    dm.setup("test")
    spikes, labels = next(iter(dm.train_dataloader()))
    assert spikes.shape == (16, num_steps, dm.num_inputs) and spikes.dtype == torch.float32
    assert labels.shape == (16,) and labels.dtype == torch.int64

    want, want_labels = naive_binned(
        shd_dir / "SHD" / "shd_test.h5", time_bin_ms, num_steps, channel_bin
    )
    got, got_labels = collect(dm.test_dataloader())
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(got_labels.numpy(), want_labels)
    assert got.max() > 1  # counts as floats

    # train + val are exactly the training file, split into disjoint index sets
    want, want_labels = naive_binned(
        shd_dir / "SHD" / "shd_train.h5", time_bin_ms, num_steps, channel_bin
    )
    train, val = dm.datasets["train"], dm.datasets["val"]
    assert sorted(train.indices + val.indices) == list(range(len(want)))
    val_spikes, val_labels = collect(dm.val_dataloader())
    np.testing.assert_array_equal(val_spikes.numpy(), want[val.indices])
    np.testing.assert_array_equal(val_labels.numpy(), want_labels[val.indices])


def test_events_after_the_window_are_dropped(tmp_path):
    write_heidelberg_file(
        tmp_path / "SHD" / "shd_train.h5",
        times=[np.array([0.0, 0.0049, 0.25, 0.5, 1.0]), np.array([0.9])],
        units=[np.array([0, 1, 5, 699, 3]), np.array([10])],
        labels=[3, 4],
        speakers=[0, 1],
        keys=[f"w{k}" for k in range(20)],
    )
    write_heidelberg_file(
        tmp_path / "SHD" / "shd_test.h5",
        [np.array([0.1])],
        [np.array([1])],
        [0],
        [2],
        [f"w{k}" for k in range(20)],
    )
    dm = SHDDataModule(tmp_path, time_bin_ms=5.0, num_steps=100, split_by_speaker=False)
    full = dm.read_split("train")[0]
    first, label = full[0]
    assert label.item() == 3
    assert first.shape == (100, 140)
    nonzero = {(*ix, first[tuple(ix)].item()) for ix in first.nonzero().tolist()}
    # 0 s and 4.9 ms share step 0 and channel 0; 0.25 s -> step 50, channel 1;
    # 0.5 s and 1.0 s fall at/after the 0.5 s window
    assert nonzero == {(0, 0, 2.0), (50, 1, 1.0)}
    assert full[1][0].sum() == 0


def test_validation_holds_out_whole_speakers(shd_dir):
    dm = SHDDataModule(shd_dir, val_fraction=0.2, seed=3)
    dm.setup("fit")
    with h5py.File(shd_dir / "SHD" / "shd_train.h5", "r") as f:
        speakers = f["extra/speaker"][:]
    train_speakers = set(speakers[dm.datasets["train"].indices])
    val_speakers = set(speakers[dm.datasets["val"].indices])
    assert val_speakers and train_speakers and not train_speakers & val_speakers
    assert val_speakers == set(dm.val_speakers.tolist())
    assert len(dm.datasets["val"]) >= 0.2 * 60


def test_split_is_deterministic_in_seed(shd_dir):
    def val_indices(**kwargs):
        dm = SHDDataModule(shd_dir, **kwargs)
        dm.setup("validate")
        return dm.datasets["val"].indices

    assert val_indices(seed=0) == val_indices(seed=0)
    assert {tuple(val_indices(seed=s)) for s in range(6)} != {tuple(val_indices(seed=0))}
    rand = val_indices(seed=0, split_by_speaker=False, val_fraction=0.25)
    assert len(rand) == 15 and rand == val_indices(
        seed=0, split_by_speaker=False, val_fraction=0.25
    )


def test_split_train_val_pure_function():
    speakers = np.repeat(np.arange(10), [50, 80, 90, 100, 70, 60, 120, 110, 90, 30])
    for seed in range(20):
        train, val = split_train_val(speakers, val_fraction=0.1, split_by_speaker=True, seed=seed)
        assert len(train) + len(val) == len(speakers)
        assert not set(speakers[train]) & set(speakers[val])
        assert len(val) >= 0.1 * len(speakers)
    with pytest.raises(ValueError, match="2 speakers"):
        split_train_val(np.zeros(10), val_fraction=0.1, split_by_speaker=True, seed=0)


def test_ssc_validates_on_its_official_valid_file(ssc_dir):
    dm = SSCDataModule(ssc_dir, batch_size=10)
    assert (dm.num_inputs, dm.num_classes) == (140, 35)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 70
    want, want_labels = naive_binned(ssc_dir / "SSC" / "ssc_valid.h5", 10.0, 100, 5)
    got, got_labels = collect(dm.val_dataloader())
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(got_labels.numpy(), want_labels)
    assert "test" not in dm.datasets  # the test file is read only to test


@pytest.mark.parametrize("name", ["SHD", "SSC"])
def test_predict_serves_the_test_file_alone(name, shd_dir, ssc_dir):
    data_dir, module = (shd_dir, SHDDataModule) if name == "SHD" else (ssc_dir, SSCDataModule)
    dm = module(data_dir, batch_size=10)
    dm.setup("predict")
    assert set(dm.datasets) == {"test"}  # what spsnn predict writes predictions for
    want, want_labels = naive_binned(data_dir / name / f"{name.lower()}_test.h5", 10.0, 100, 5)
    got, got_labels = collect(dm.predict_dataloader())
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(got_labels.numpy(), want_labels)


def test_ssc_can_hold_out_of_training_instead(ssc_dir):
    (ssc_dir / "SSC" / "ssc_valid.h5").unlink()  # not needed then
    dm = SSCDataModule(ssc_dir, official_valid=False, val_fraction=0.2)
    dm.setup("fit")
    assert len(dm.datasets["train"]) + len(dm.datasets["val"]) == 70


def test_missing_data_dir_fails_at_construction_with_the_paths(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(HeidelbergDataMissingError) as info:
        SHDDataModule(missing)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(missing / "SHD" / "shd_train.h5") in message
    assert str(missing / "SHD" / "shd_test.h5") in message
    assert "data_dir" in message and "does not exist" in message
    assert "https://zenkelab.org/datasets/" in message
    assert "tonic.datasets.SHD(" in message
    assert not missing.exists()  # nothing created, nothing downloaded


def test_one_missing_file_is_named(shd_dir):
    (shd_dir / "SHD" / "shd_test.h5").unlink()
    with pytest.raises(HeidelbergDataMissingError, match=r"shd_test\.h5") as info:
        SHDDataModule(shd_dir)
    assert "shd_train.h5" not in str(info.value).split("Get the files")[0]
    with pytest.raises(HeidelbergDataMissingError, match=r"ssc_valid\.h5"):
        SSCDataModule(shd_dir)


def test_tonic_wrappers_never_download(tmp_path):
    with pytest.raises(HeidelbergDataMissingError, match="never downloads"):
        SHD(str(tmp_path), train=True)
    with pytest.raises(HeidelbergDataMissingError):
        SSC(str(tmp_path), split="valid")


class TinyClassifier(L.LightningModule):
    """Sum over time, one linear layer: just enough to run the DataModule through a fit."""

    def __init__(self, num_inputs: int, num_classes: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(num_inputs, num_classes)
        self.seen_orders: list[list[int]] = []

    def step(self, batch):
        spikes, labels = batch
        logits = self.linear(spikes.sum(dim=1))
        return torch.nn.functional.cross_entropy(logits, labels), (
            logits.argmax(1) == labels
        ).float().mean()

    def training_step(self, batch, batch_idx):
        return self.step(batch)[0]

    def validation_step(self, batch, batch_idx):
        self.log("val_acc", self.step(batch)[1])

    def test_step(self, batch, batch_idx):
        self.log("test_acc", self.step(batch)[1])

    def on_train_epoch_start(self):
        self.seen_orders.append(list(self.trainer.train_dataloader.sampler))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


def test_full_fit_and_test_on_tiny_shd_files(shd_dir):
    torch.manual_seed(0)
    dm = SHDDataModule(shd_dir, batch_size=16, val_fraction=0.2)
    model = TinyClassifier(dm.num_inputs, dm.num_classes)
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=dm)
    assert 0.0 <= trainer.callback_metrics["val_acc"] <= 1.0
    (result,) = trainer.test(model, datamodule=dm, verbose=False)
    assert result["test_acc"] > 0.5  # the synthetic classes are learnable (chance: 0.05)
    # Lightning sets the sampler's epoch: a new training order every epoch
    assert len(model.seen_orders) == 3 and model.seen_orders[0] != model.seen_orders[1]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"channel_bin": 2.5}, TypeError, r"channel_bin must be an int >= 1, got 2.5"),
        ({"batch_size": "64"}, TypeError, r"batch_size must be an int >= 1, got '64'"),
        ({"time_bin_ms": "10"}, TypeError, r"time_bin_ms must be a finite number"),
        ({"num_steps": 0}, ValueError, r"num_steps must be an int >= 1, got 0"),
        ({"seed": -1}, ValueError, r"seed must lie in \[0, 2\*\*32 - 1\] \(a seed\), got -1"),
        # torch's shuffle refused it only at the first epoch ("Overflow when unpacking long")
        ({"seed": 2**64}, ValueError, r"seed must lie in \[0, 2\*\*32 - 1\]"),
        # flat int32 bins overflowed, or a dense sample failed to allocate in the first batch
        (
            {"num_steps": 2**31 // 140 + 1},
            ValueError,
            r"^num_steps=15339169 x 140 channels \(channel_bin=5\) is 2147483660 bins per sample, "
            r"more than 2147483648 \(2\*\*31; a dense sample would take 8 GiB\)",
        ),
    ],
)
def test_bad_arguments_name_themselves(shd_dir, kwargs, error, match):
    with pytest.raises(error, match=match):
        SHDDataModule(shd_dir, **kwargs)


def test_events_in_a_few_time_steps_warn_naming_time_bin_ms(shd_dir, recwarn):
    """A 500 ms bin puts 1.2 s samples in 3 of 100 steps; 10 ms bins (SHD's) and 1 ms bins
    over 1000 steps spread them and say nothing."""
    for time_bin_ms, num_steps in ((10.0, 100), (1.0, 1000)):
        SHDDataModule(shd_dir, time_bin_ms=time_bin_ms, num_steps=num_steps, cache=False).setup()
    assert not [w for w in recwarn if "time steps" in str(w.message)]
    dm = SHDDataModule(shd_dir, time_bin_ms=500.0, cache=False)
    dm.setup("fit")
    warned = [str(w.message) for w in recwarn if "time steps" in str(w.message)]
    assert len(warned) == 3 and {dm.occupied_steps(s) for s in ("train", "val", "test")} == {3}
    assert warned[0].startswith(
        f"spsnn: SHD train split ({shd_dir / 'SHD' / 'shd_train.h5'}): its "
    ) and warned[0].endswith(
        "events land in 3 of the num_steps=100 time steps of time_bin_ms=500 (the latest event "
        "is at 1.20019 s): the input has little timing left; give time_bin_ms=12 to spread "
        "1.20019 s over num_steps=100 (SHD/SSC: time_bin_ms=10, num_steps=100)"
    ), warned[0]
