"""The data boundary: every fault in an SHD/SSC folder stops ``spsnn fit`` before training.

Each case writes a small data set in the real HDF5 layout
(:func:`~lightning_modules.data.synthetic.make_synthetic_heidelberg`), breaks one thing
in one file, runs ``spsnn fit`` of the SHD recipe as a user does, and asserts the exact
outcome: exit status 2, one line on stderr naming the file, the value and the fix, no
traceback and no epoch trained; or, where the data is valid but lossy, a run with a
warning that names the counts.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from lightning_modules.data.synthetic import make_synthetic_heidelberg

REPO = Path(__file__).resolve().parents[2]
SHD_RECIPE = REPO / "recipes" / "shd_dcls_free.yaml"
SSC_RECIPE = REPO / "recipes" / "ssc.yaml"


# ----------------------------------------------------------------- helpers
def write_file(path: Path, datasets: dict[str, object]) -> None:
    """An HDF5 file with exactly ``datasets`` (key -> array; a list of arrays is written as
    a variable-length dataset of its elements' dtype, an empty one as the real files'
    float16 times and uint16 units)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            if isinstance(value, list):
                empty = np.uint16 if key.endswith("units") else np.float16
                base = np.asarray(value[0]).dtype if value else empty
                node = f.create_dataset(key, (len(value),), dtype=h5py.vlen_dtype(base))
                for i, element in enumerate(value):
                    node[i] = np.asarray(element, dtype=base)
            else:
                f.create_dataset(key, data=value)


def read_file(path: Path) -> dict[str, object]:
    """Every dataset of an HDF5 file; variable-length ones as lists of arrays."""
    out: dict[str, object] = {}
    with h5py.File(path, "r") as f:

        def visit(name, node):
            if isinstance(node, h5py.Dataset):
                value = node[()]
                out[name] = list(value) if h5py.check_vlen_dtype(node.dtype) else value

        f.visititems(visit)
    return out


def edit(path: Path, **changes) -> None:
    """Rewrites ``path`` with datasets replaced (``spikes__times=...``: key with ``/`` as
    ``__``) or removed (value None)."""
    datasets = read_file(path)
    for key, value in changes.items():
        key = key.replace("__", "/")
        if value is None:
            datasets.pop(key)
        else:
            datasets[key] = value
    write_file(path, datasets)


def shd_folder(root: Path, **kwargs) -> Path:
    """A clean SHD folder (40 train samples of 6 speakers, 20 test), every event inside the
    default 1 s window."""
    options = {"num_samples": {"train": 40, "test": 20}, "events_per_sample": 40}
    return make_synthetic_heidelberg(root, "SHD", duration_s=0.9, **(options | kwargs))


def tiny_config(root: Path, data_dir: Path, **data) -> Path:
    """A config layered on the SHD recipe: one epoch of a tiny network on ``data_dir``."""
    config = {
        "trainer": {
            "max_epochs": 1,
            "default_root_dir": str(root / "runs"),
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "accelerator": "cpu",
        },
        "model": {"net": {"init_args": {"hidden_sizes": [6], "batch_norm": False}}},
        "data": {"init_args": {"data_dir": str(data_dir), "batch_size": 8, **data}},
        "run": {"wandb": False, "name": "fault"},
    }
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def fit(tmp_path, spsnn):
    """``fit(data_dir, recipe=SHD_RECIPE, **data options)``: (status, error line, stderr,
    run folder or None) of ``spsnn fit`` of the recipe with a tiny network."""

    def run(data_dir: Path, recipe: Path = SHD_RECIPE, **data):
        config = tiny_config(tmp_path, data_dir, **data)
        outcome = spsnn("fit", "--config", recipe, "--config", config)
        runs = sorted((tmp_path / "runs" / "fault").glob("version_*"))
        return outcome.code, outcome.line, outcome.err, runs[-1] if runs else None

    return run


def assert_refused(outcome, *fragments: str) -> None:
    """Exit 2, one error line holding every fragment, no checkpoint written: ``spsnn fit: error:
    could not build the run from the config: ...`` (refused when the DataModule is built)
    or ``spsnn: error: ...`` (refused in its setup)."""
    code, line, err, run = outcome
    assert code == 2, err
    assert line.startswith(
        ("spsnn fit: error: could not build the run from the config: ", "spsnn: error: ")
    ), err
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert run is None or not list(run.glob("checkpoints/*.ckpt")), "an epoch was trained"


# ------------------------------------------------- faults in the file format
def shd(tmp_path) -> tuple[Path, Path, Path]:
    data = shd_folder(tmp_path / "data")
    return data, data / "SHD" / "shd_train.h5", data / "SHD" / "shd_test.h5"


def test_truncated_test_file(tmp_path, fit):
    data, _, test = shd(tmp_path)
    content = test.read_bytes()
    test.write_bytes(content[: len(content) // 2])
    assert_refused(fit(data), f"{test}: not a readable HDF5 file", "copy or extract it again")


def test_missing_labels_key(tmp_path, fit):
    data, _, test = shd(tmp_path)
    edit(test, labels=None)
    assert_refused(fit(data), f"{test}: no 'labels' dataset (it has extra")


def test_unit_id_900_in_the_test_file(tmp_path, fit):
    data, _, test = shd(tmp_path)
    units = read_file(test)["spikes/units"]
    units[5] = units[5].copy()
    units[5][3] = 900
    edit(test, spikes__units=units)
    assert_refused(fit(data), f"{test}: 1 unit ids outside [0, 700) (900 in sample 5)")


def test_17_labels_for_20_samples(tmp_path, fit):
    data, _, test = shd(tmp_path)
    edit(test, labels=read_file(test)["labels"][:17])
    assert_refused(fit(data), f"{test}: '/labels' has 17 entries for 20 samples")


def test_label_minus_one(tmp_path, fit):
    data, _, test = shd(tmp_path)
    labels = read_file(test)["labels"].astype(np.int16)
    labels[4] = -1
    edit(test, labels=labels)
    assert_refused(fit(data), f"{test}: 1 labels outside [0, 20): -1 at sample 4")


def test_times_and_units_of_different_lengths(tmp_path, fit):
    data, _, test = shd(tmp_path)
    times = read_file(test)["spikes/times"]
    times[7] = times[7][:-2]
    edit(test, spikes__times=times)
    assert_refused(fit(data), f"{test}: sample 7 has 38 spike times but 40 units")


def test_empty_test_file(tmp_path, fit):
    data, _, test = shd(tmp_path)
    edit(test, spikes__times=[], spikes__units=[], labels=np.zeros(0, np.uint8),
         extra__speaker=np.zeros(0, np.uint16))  # fmt: skip
    assert_refused(fit(data), f"{test}: holds no samples (0 labels)")


def test_zero_byte_test_file(tmp_path, fit):
    data, _, test = shd(tmp_path)
    test.write_bytes(b"")
    assert_refused(fit(data), f"{test}: an empty file (0 bytes)")


def test_label_25_in_a_20_class_train_file(tmp_path, fit):
    data, train, _ = shd(tmp_path)
    labels = read_file(train)["labels"]
    labels[11] = 25
    edit(train, labels=labels)
    assert_refused(fit(data), f"{train}: 1 labels outside [0, 20): 25 at sample 11", "20 classes")


def test_one_speaker_with_split_by_speaker(tmp_path, fit):
    data = shd_folder(tmp_path / "data", speakers={"train": [3], "test": [8]})
    train = data / "SHD" / "shd_train.h5"
    assert_refused(
        fit(data),
        f"{train}: split_by_speaker needs at least 2 speakers in the training file, it names 1",
        "set split_by_speaker=False",
    )
    code, _, err, _ = fit(data, split_by_speaker=False)
    assert code == 0, err


def test_every_train_time_nan(tmp_path, fit):
    data, train, _ = shd(tmp_path)
    times = [np.full_like(t, np.nan) for t in read_file(train)["spikes/times"]]
    edit(train, spikes__times=times)
    assert_refused(fit(data), f"{train}: 1600 event times are NaN or infinite (nan in sample 0)")


def test_test_times_in_milliseconds(tmp_path, fit):
    data, _, test = shd(tmp_path)
    edit(test, spikes__times=[t * 1000 for t in read_file(test)["spikes/times"]])
    assert_refused(
        fit(data),
        f"SHD test split ({test}): binning keeps 1 of its 800 events (99.9 % lost: 799 after "
        "window); the window is 1 s (num_steps=100 x time_bin_ms=10) and the latest event is "
        "at 900 s: are the times in milliseconds? SHD/SSC store seconds; 19 of 20 samples keep "
        "no event (all-zero input): too little input",
    )


@pytest.mark.parametrize(
    ("labels", "shown"),
    [
        (np.array([3.0] * 10 + [3.7] * 10), "got floats (float64), e.g. 3.7 at sample 10"),
        (np.array([b"three"] * 20), "got |S5 values (|S5), e.g. b'three' at sample 0"),
        (np.ones(20, bool), "got booleans (bool)"),
    ],
)
def test_labels_that_are_not_integers(tmp_path, fit, labels, shown):
    data, _, test = shd(tmp_path)
    edit(test, labels=labels)
    assert_refused(fit(data), f"{test}: '/labels' must be integers (class ids), {shown}")


def test_two_dimensional_times(tmp_path, fit):
    data, train, _ = shd(tmp_path)
    edit(train, spikes__times=np.zeros((40, 40), np.float16))
    assert_refused(
        fit(data),
        f"{train}: '/spikes/times' must be a 1-D variable-length array (float event times "
        "in seconds per sample), got a float16 array of shape (40, 40)",
    )


@pytest.mark.parametrize(
    ("scale", "shown"),
    [
        (1e6, "up to 898925 in the first samples: microseconds?; SHD/SSC store float "
              "seconds: write times / 1e6 as floats"),  # said "milliseconds?" before
        (1e3, "up to 898 in the first samples: milliseconds?; SHD/SSC store float seconds: "
              "write times / 1000 as floats"),
    ],
)  # fmt: skip
def test_integer_times_in_another_unit_name_it(tmp_path, fit, scale, shown):
    data, train, _ = shd(tmp_path)
    times = [
        np.asarray(t.astype(np.float64) * scale, np.int64) for t in read_file(train)["spikes/times"]
    ]
    edit(train, spikes__times=times)
    assert_refused(
        fit(data),
        f"{train}: '/spikes/times' must hold float event times in seconds, got integers "
        f"(int64), {shown}",
    )


def test_test_times_in_microseconds(tmp_path, fit):
    data, _, test = shd(tmp_path)
    edit(test, spikes__times=[t.astype(np.float64) * 1e6 for t in read_file(test)["spikes/times"]])
    assert_refused(fit(data), "the latest event is at 899902 s: are the times in microseconds?")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (  # a 10 ms window on 0.9 s samples asked "are the times in milliseconds?"
            {"num_steps": 1},
            "SHD train split ({train}): binning keeps 16 of its 1320 events (98.8 % lost: 1304 "
            "after window); the window is 0.01 s (num_steps=1 x time_bin_ms=10) and the latest "
            "event is at 0.898925 s; raise num_steps or time_bin_ms to keep them; 20 of 33 "
            "samples",
        ),
        (  # every event in step 0, trained without a word
            {"time_bin_ms": 1e300},
            "SHD train split ({train}): its 1320 events land in 1 of the num_steps=100 time "
            "steps of time_bin_ms=1e+300 (the latest event is at 0.898925 s): the input has no "
            "timing left; give time_bin_ms=8.99 to spread 0.898925 s over num_steps=100 "
            "(SHD/SSC: time_bin_ms=10, num_steps=100)",
        ),
        (  # silently meant channel_bin=700 (one channel)
            {"channel_bin": 10000},
            "channel_bin=10000 is more than the 700 units of the recording (num_units=700): "
            "every unit pools into one channel, as with channel_bin=700; give channel_bin <= "
            "700 (5: 140 channels)",
        ),
    ],
)
def test_a_binning_that_loses_the_timing_or_the_channels_is_refused(
    tmp_path, fit, setting, message
):
    data, train, _ = shd(tmp_path)
    assert_refused(fit(data, **setting), message.format(train=train))


def test_times_as_integers_are_refused(tmp_path, fit):
    """Whole seconds would bin every event of a sample at 0 s: refused, not truncated."""
    data, train, _ = shd(tmp_path)
    times = [np.asarray(t, np.int64) for t in read_file(train)["spikes/times"]]
    edit(train, spikes__times=times)
    assert_refused(
        fit(data),
        f"{train}: '/spikes/times' must hold float event times in seconds, got integers (int64)",
    )


@pytest.mark.parametrize("key", ["spikes/times", "spikes/units"])
def test_events_as_variable_length_strings(tmp_path, fit, key):
    data, _, test = shd(tmp_path)
    edit(test, **{key.replace("/", "__"): None})
    with h5py.File(test, "a") as f:
        f.create_dataset(key, data=["0.1 0.2"] * 20, dtype=h5py.string_dtype())
    assert_refused(fit(data), f"{test}: '/{key}' must hold ", "got variable-length strings")


def test_a_uint64_label_beyond_int64_is_shown_as_stored(tmp_path, fit):
    data, train, _ = shd(tmp_path)
    labels = read_file(train)["labels"].astype(np.uint64)
    labels[3] = 2**63 + 5
    edit(train, labels=labels)
    assert_refused(
        fit(data), f"{train}: '/labels' holds 9223372036854775813 at sample 3, beyond any class id"
    )


def test_missing_speakers_only_matter_for_a_speaker_split(tmp_path, fit):
    data, train, _ = shd(tmp_path)
    edit(train, extra__speaker=None)
    assert_refused(fit(data), f"{train}: no 'extra/speaker' dataset")
    code, _, err, _ = fit(data, split_by_speaker=False)
    assert code == 0, err


def test_duplicate_class_words(tmp_path, fit):
    data, _, test = shd(tmp_path)
    edit(test, extra__keys=np.array([b"word"] * 20))
    assert_refused(
        fit(data), f"{test}: extra/keys names 20 class words (1 distinct), this data set has 20"
    )


def test_negative_times(tmp_path, fit):
    data, train, _ = shd(tmp_path)
    times = read_file(train)["spikes/times"]
    times[2] = times[2] - np.float16(0.5)
    edit(train, spikes__times=times)
    assert_refused(fit(data), f"{train}: ", "event times outside [0, 1e+06) s", "in sample 2)")


def test_huge_unit_ids_in_ssc(tmp_path, fit):
    data = make_synthetic_heidelberg(
        tmp_path / "data", "SSC", num_samples={"train": 40, "valid": 10, "test": 10},
        events_per_sample=30, duration_s=0.9,
    )  # fmt: skip
    valid = data / "SSC" / "ssc_valid.h5"
    units = [u.astype(np.int64) for u in read_file(valid)["spikes/units"]]
    units[9][0] = 2**40
    edit(valid, spikes__units=units)
    assert_refused(
        fit(data, recipe=SSC_RECIPE),
        f"{valid}: 1 unit ids outside [0, 700) (1099511627776 in sample 9)",
    )


def test_unreadable_file(tmp_path, fit, monkeypatch):
    data, train, _ = shd(tmp_path)
    train.chmod(0)
    real_access = __import__("os").access  # root reads anything: pretend as a user would
    monkeypatch.setattr(
        "lightning_modules.data.hsd_format.os.access",
        lambda path, mode: False if Path(path) == train else real_access(path, mode),
    )
    assert_refused(fit(data), f"{train}: not readable (permission denied)")


def test_folder_instead_of_a_file(tmp_path, fit):
    data, _, test = shd(tmp_path)
    test.unlink()
    test.mkdir()
    assert_refused(fit(data), f"{test}: a folder, not an HDF5 file")


def test_not_an_hdf5_file(tmp_path, fit):
    data, _, test = shd(tmp_path)
    test.write_text("spike times, one per line\n0.1\n")
    assert_refused(fit(data), f"{test}: not a readable HDF5 file")


# ------------------------------------------------------------- layouts
def test_neither_layout_names_both(tmp_path, fit):
    data = tmp_path / "empty"
    data.mkdir()
    assert_refused(
        fit(data),
        f"SHD data not found (data_dir='{data}' lacks them): expected {data}/SHD/shd_train.h5",
        f"shd_train.h5, shd_test.h5 directly in {data}/ (bare layout)",
    )


def test_an_unextracted_archive_is_named(tmp_path, fit):
    data, _, test = shd(tmp_path)
    test.rename(test.with_name("shd_test.h5.zip"))
    assert_refused(
        fit(data),
        f"tonic's layout ({data}/SHD/) lacks {test}",
        "(found shd_test.h5.zip: extract it beside itself)",
    )


def test_both_layouts_is_ambiguous(tmp_path, fit):
    data, train, test = shd(tmp_path)
    for path in (train, test):
        (data / path.name).write_bytes(path.read_bytes())
    assert_refused(fit(data), "holds the SHD files twice, in tonic's layout")


# ----------------------------------------------------- valid but lossy data
def test_lossy_but_valid_data_trains_with_a_warning_and_counts(tmp_path, fit, recwarn):
    """Some test samples in milliseconds, one empty training sample: the run goes on, the
    warning names the counts and the cause, summary.json holds them."""
    data, train, test = shd(tmp_path)
    times = read_file(test)["spikes/times"]
    times[0] = times[0] * 1000
    edit(test, spikes__times=times)
    t, u = read_file(train)["spikes/times"], read_file(train)["spikes/units"]
    t[0], u[0] = t[0][:0], u[0][:0]
    edit(train, spikes__times=t, spikes__units=u)
    code, _, err, run = fit(data)
    assert code == 0, err
    warned = [str(w.message) for w in recwarn if str(w.message).startswith("spsnn: SHD")]
    expected = (
        f"spsnn: SHD test split ({test}): binning keeps 760 of its 800 events (5.0 % lost: "
        "40 after window); the window is 1 s (num_steps=100 x time_bin_ms=10) and the "
        f"latest event is at {float(times[0].max()):g} s: are the times in milliseconds? "
        "SHD/SSC store seconds; 1 of 20 samples keep no event (all-zero input)"
    )
    assert expected in warned, warned
    assert any("samples keep no event (all-zero input)" in w for w in warned if "train" in w)
    summary = yaml.safe_load((run / "summary.json").read_text())
    counts = summary["data_events"]
    assert counts["test"]["events_lost"]["after_window"] == 40
    assert counts["test"]["events_kept"] == 760
    assert counts["train"]["samples"] + counts["val"]["samples"] == 40
    together = counts["train"]["samples_without_events"] + counts["val"]["samples_without_events"]
    assert together == 1
    assert counts["train"]["events_read"] + counts["val"]["events_read"] == 39 * 40


# ------------------------------------------------------------- transforms
def test_a_frame_transform_is_refused_at_construction(tmp_path, fit):
    data, _, _ = shd(tmp_path)
    transform = {"class_path": "tonic.transforms.ToFrame",
                 "init_args": {"sensor_size": [700, 1, 1], "n_time_bins": 10}}  # fmt: skip
    assert_refused(
        fit(data, transform=transform),
        "transform ToFrame(",
        "returned ndarray of shape (10, 1, 700) for a 3-event test sample, not events",
        "not ToFrame",
    )


def test_a_checkpoint_is_not_evaluated_with_an_edited_transform(tmp_path, fit, spsnn, monkeypatch):
    """Checkpoints recorded a transform by its name: evaluating with an edited one (the same
    name, other events) gave another input in silence. A checkpoint saved before the
    fingerprint was recorded still evaluates."""
    from tests.helpers import event_transforms

    data, _, _ = shd(tmp_path)
    code, _, err, run = fit(data, transform="tests.helpers.event_transforms.shift")
    assert code == 0, err
    last = run / "checkpoints" / "last.ckpt"
    config = tiny_config(tmp_path, data, transform="tests.helpers.event_transforms.shift")
    test = ("test", "--config", SHD_RECIPE, "--config", config, "--trainer.logger", "false")
    assert spsnn(*test, "--ckpt_path", last).code == 0

    monkeypatch.setattr(event_transforms, "SHIFT_US", 1000)  # the transform, edited
    outcome = spsnn(*test, "--ckpt_path", last)
    assert outcome.code == 2, outcome.err
    assert outcome.line.startswith(
        f"spsnn test: error: --ckpt_path {last} holds a network trained on another input than this "
        "command's data gives: data.transform: tests.helpers.event_transforms.shift computes "
        "other events than when the checkpoint was trained (its code, parameters or the "
        "values it reads changed, or the Python or package versions did; fingerprint "
        "checkpoint "
    ), outcome.line
    assert outcome.line.endswith(
        "): evaluate with the transform and versions it was trained with, or retrain; give "
        "the data settings it "
        "was trained with (its run's config.yaml)"
    ), outcome.line

    older = tmp_path / "older.ckpt"  # saved before checkpoints recorded the fingerprint
    checkpoint = torch.load(last, weights_only=True)
    del checkpoint["input_settings"]["transform_fingerprint"]
    torch.save(checkpoint, older)
    assert spsnn(*test, "--ckpt_path", older).code == 0


# ---------------------------------------------------- user DataModules
def fit_user_datamodule(tmp_path, spsnn, name: str):
    """``spsnn fit`` of a 4-hidden-neuron network on ``tests.helpers.user_datamodules.<name>``."""
    config = {
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "default_root_dir": str(tmp_path),
                    "enable_progress_bar": False},
        "model": {"net": {"class_path": "spatial_layers.SpatialSNN",
                          "init_args": {"hidden_sizes": [4], "max_delay": 2}}},
        "data": {"class_path": f"tests.helpers.user_datamodules.{name}"},
        "run": {"wandb": False},
    }  # fmt: skip
    path = tmp_path / "user.yaml"
    path.write_text(yaml.safe_dump(config))
    return spsnn("fit", "--config", path)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "NoClasses",
            "data: NoClasses has no attribute 'num_classes', which spsnn links into "
            "model.net.init_args.num_classes: define num_classes on the DataModule",
        ),
        (
            "NoneInputs",
            "data: NoneInputs.num_inputs is None, which spsnn links into "
            "model.net.init_args.num_inputs: it must be an int >= 1",
        ),
        (
            "ZeroSteps",  # before: "0 does not conform to restriction v>0", naming neither
            "data: ZeroSteps.num_steps is 0, which spsnn links into model.num_steps: it must "
            "be an int >= 1, known when the DataModule is built (before setup)",
        ),
    ],
)
def test_a_user_datamodule_without_what_the_network_needs(tmp_path, spsnn, name, message):
    outcome = fit_user_datamodule(tmp_path, spsnn, name)
    assert outcome.code == 2
    assert outcome.line.startswith(
        f"spsnn fit: error: could not build the run from the config: {message}"
    )
    assert not list(tmp_path.glob("**/*.ckpt"))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "IgnoredLabels",  # trained to the end before: cross_entropy skips the id -100
            "the labels of a train batch hold 8 ids outside [0, 3) (num_classes), the first "
            "-100 at [0]: the data module must give (spikes, labels) with labels int64 class "
            "ids 0..num_classes-1",
        ),
        (
            "Int32Labels",  # an internal error (RuntimeError in cross_entropy) before
            "the labels of a train batch are torch.int32, not torch.long class ids",
        ),
        (
            "LongerBatches",  # trained before, and the checkpoint recorded num_steps=10
            "the spikes of a sanity_check batch have 13 time steps (shape (8, 13, 5)), but the "
            "data module declares num_steps=10: the data module must give (B, T, C) spikes "
            "with T = its num_steps and C = its num_inputs",
        ),
        (
            "WiderBatches",
            "the spikes of a sanity_check batch have 7 channels (shape (8, 10, 7)), but the "
            "network takes num_inputs=5 (the data module's)",
        ),
        (
            "EmptySplits",  # "`Trainer.fit` stopped: No training batches." and exit 0 before
            "data: EmptySplits.train_dataloader() gives 0 samples (its train split); "
            "EmptySplits.val_dataloader() gives 0 samples (its validation split): fit would "
            "run on no sample; give that split of the data module samples",
        ),
        (
            "EmptyVal",  # refused only after a trained epoch before (no val_acc to monitor)
            "data: EmptyVal.val_dataloader() gives 0 samples (its validation split): fit",
        ),
        (
            "EmptyTest",  # refused only after fit trained and saved checkpoints before
            "data: EmptyTest.test_dataloader() gives 0 samples (its test split): the test "
            "after fit (run.test_after_fit) would run on no sample; give that split of the "
            "data module samples, or set run.test_after_fit false",
        ),
    ],
)
def test_a_user_datamodule_with_batches_that_are_refused(tmp_path, spsnn, name, message):
    outcome = fit_user_datamodule(tmp_path, spsnn, name)
    assert outcome.code == 2, outcome.err
    assert outcome.line.startswith(f"spsnn: error: {message}"), outcome.line
    assert not list(tmp_path.glob("**/*.ckpt"))
