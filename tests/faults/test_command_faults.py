"""Faults at the boundaries of the spsnn command: verbs, checkpoints, outputs, settings.

Every case is a user's mistake; each must end in one line on stderr that names the
value and the fix, with exit status 2 and nothing written, or give the correct result.
"""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from spatial_layers import SpatialSNN

# --- verbs that evaluate need weights ------------------------------------------------


@pytest.mark.parametrize("verb", ["test", "validate", "predict"])
def test_an_evaluating_verb_without_a_checkpoint_is_refused(verb, spsnn, config_file, tmp_path):
    outcome = spsnn(verb, "--config", config_file())
    assert outcome.code == 2
    assert f"spsnn {verb} evaluates a trained network: give --ckpt_path" in outcome.line
    assert not (tmp_path / "runs").exists()


def test_ckpt_path_none_evaluates_the_untrained_network_saying_so(spsnn, config_file):
    outcome = spsnn("test", "--config", config_file(), "--ckpt_path", "none")
    assert outcome.code == 0
    assert "--ckpt_path none: test runs the untrained network" in outcome.err


def test_ckpt_path_last_finds_the_newest_run_of_the_name_or_is_refused(spsnn, trained, tmp_path):
    config, _, _ = trained
    outcome = spsnn("test", "--config", config, "--ckpt_path", "last")
    assert outcome.code == 0 and "test_acc" in outcome.out
    other = yaml.safe_load(config.read_text())
    other["trainer"]["default_root_dir"] = str(tmp_path / "empty")
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(other))
    outcome = spsnn("fit", "--config", path, "--ckpt_path", "last")
    assert outcome.code == 2 and "--ckpt_path last: no " in outcome.line
    assert not (tmp_path / "empty").exists()  # never a silent fresh start


@pytest.mark.parametrize("value", ["best", "hpc"])
def test_other_special_checkpoint_names_are_refused(value, spsnn, trained):
    config, _, _ = trained
    outcome = spsnn("test", "--config", config, "--ckpt_path", value)
    assert (
        outcome.code == 2 and f"--ckpt_path {value}: spsnn reads checkpoint files" in outcome.line
    )


# --- checkpoints against the data and the schedule ------------------------------------


def test_a_checkpoint_is_evaluated_only_on_the_input_it_was_trained_on(spsnn, trained):
    config, _, last = trained
    outcome = spsnn("test", "--config", config, "--ckpt_path", last, "--data.init_args.t_max", "10")
    assert outcome.code == 2
    assert outcome.line == (
        f"spsnn test: error: --ckpt_path {last} holds a network trained on another input than this "
        "command's data gives: data.t_max: checkpoint 8.0, command 10.0; give the data "
        "settings it was trained with (its run's config.yaml)"
    )


def test_a_checkpoint_of_other_hyperparameters_is_refused_in_one_line(spsnn, trained):
    """Three lines before (a header, the list, the fix): a user grepping for 'error:' saw
    only the header."""
    config, run, last = trained
    outcome = spsnn("test", "--config", config, "--ckpt_path", last, "--model.lr", "0.5")
    assert outcome.code == 2
    assert outcome.line == (
        f"spsnn test: error: --ckpt_path {last} holds a model with other hyperparameters than "
        "this command asks for: model.lr: checkpoint 0.01, command 0.5; give its run's own config "
        f"({run / 'config.yaml'}), changing only trainer options such as "
        "--trainer.max_epochs, or add --run.use_ckpt_hparams true to run with the "
        "checkpoint's values (to train these weights under another recipe on purpose, see "
        "'Checkpoints and resuming' in docs/training.md)"
    )


def test_a_resume_joins_its_runs_name_and_a_schedule_ending_before_its_step_is_refused(
    spsnn, trained, tmp_path
):
    _, run, last = trained
    copied = tmp_path / "config.yaml"  # named like a run's own config.yaml
    copied.write_text((run / "config.yaml").read_text())
    before = len(list(run.parent.glob("version_*")))
    outcome = spsnn(
        "fit", "--config", copied, "--ckpt_path", last, "--trainer.max_epochs", "3",
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    assert len(list(run.parent.glob("version_*"))) == before + 1  # under "tiny", not "config"
    assert not (run.parent.parent / "config").exists()
    # fewer samples per epoch: the new plan (3 epochs x 2 steps) ends before step 8
    outcome = spsnn(
        "fit", "--config", copied, "--ckpt_path", last, "--trainer.max_epochs", "3",
        "--data.init_args.train_size", "32",
    )  # fmt: skip
    assert outcome.code == 2
    assert "the checkpoint is at optimizer step 8, but this run plans 6 steps" in outcome.line


def test_a_checkpoint_with_a_nan_weight_is_refused_by_every_verb(spsnn, trained, tmp_path):
    config, _, last = trained
    checkpoint = torch.load(last, weights_only=True)
    key = next(k for k, v in checkpoint["state_dict"].items() if k.endswith("synapses.weight"))
    checkpoint["state_dict"][key][0, 0] = float("nan")
    broken = tmp_path / "nan.ckpt"
    torch.save(checkpoint, broken)
    for argv in (
        ["predict", "--config", config, "--ckpt_path", broken],
        ["test", "--config", config, "--ckpt_path", broken],
        ["export", broken, tmp_path / "out.nir"],
    ):
        outcome = spsnn(*argv)
        assert outcome.code == 2, argv
        assert f"NaN or Inf in net.{key.removeprefix('net.')}" in outcome.line
    assert not (tmp_path / "out.nir").exists()


@pytest.mark.parametrize("damage", ["missing", "shape"])
def test_a_checkpoint_with_a_missing_or_reshaped_tensor_is_one_line(
    damage, spsnn, trained, tmp_path
):
    config, _, last = trained
    checkpoint = torch.load(last, weights_only=True)
    key = next(k for k in checkpoint["state_dict"] if k.endswith("synapses.weight"))
    if damage == "missing":
        del checkpoint["state_dict"][key]
    else:
        checkpoint["state_dict"][key] = torch.zeros(3, 3)
    broken = tmp_path / f"{damage}.ckpt"
    torch.save(checkpoint, broken)
    for argv in (
        ["test", "--config", config, "--ckpt_path", broken],
        ["export", broken, tmp_path / "o.nir"],
    ):
        outcome = spsnn(*argv)
        assert outcome.code == 2 and key.removeprefix("net.") in outcome.line


# --- outputs never overwrite inputs ------------------------------------------------------


def test_export_never_writes_over_its_checkpoint_or_the_runs_summary(spsnn, trained, tmp_path):
    _, run, last = trained
    before = last.read_bytes()
    outcome = spsnn("export", last, last)
    assert outcome.code == 2 and "is the checkpoint itself" in outcome.line
    assert last.read_bytes() == before
    summary = (run / "summary.json").read_text()
    outcome = spsnn("export", last, run / "summary.nir", "--evaluate")
    assert outcome.code == 0, outcome.err
    assert (run / "summary.json").read_text() == summary  # its evaluation went beside it
    assert json.loads((run / "summary.evaluation.json").read_text())["split"] == "test"
    assert spsnn("report", run).code == 0
    outcome = spsnn("export", last, run / "summary.nir")
    assert outcome.code == 2 and "exists: give another file, or --force" in outcome.line
    assert spsnn("export", last, run / "summary.nir", "--force").code == 0


def test_unwritable_destinations_are_one_line_before_any_work(spsnn, trained):
    config, run, last = trained
    locked = Path("/proc/self")  # a folder no one can create files in, the superuser neither
    outcome = spsnn("export", last, locked / "o.nir")
    assert outcome.code == 2 and "/proc/self is not writable" in outcome.line
    outcome = spsnn("fit", "--config", config, "--trainer.default_root_dir", locked / "runs")
    assert outcome.code == 2 and "/proc/self is not writable" in outcome.line
    outcome = spsnn("report", run, "--json", locked / "rows.json")
    assert outcome.code == 2 and "/proc/self is not writable" in outcome.line


# --- settings checked at construction, with their names --------------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--model.lr", "inf", "model: lr must be a positive finite number, got inf"),
        ("--model.label_smoothing", "1.5", "model: label_smoothing must be in [0, 1], got 1.5"),
        ("--model.net.init_args.velocity", "-1", "velocity must be a positive finite number"),
        (
            "--model.net.init_args.velocity",
            "inf",
            "spsnn fit: error: model.net.init_args.velocity inf: expected a finite float",
        ),
        ("--model.net.init_args.beta", "1.5", "beta (a decay per step) must be a number in (0, 1]"),
        ("--trainer.callbacks.end", ".inf", "end must be a positive finite number (steps)"),
    ],
)
def test_a_bad_setting_names_itself_before_anything_runs(
    option, value, message, spsnn, config_file, tmp_path
):
    outcome = spsnn("fit", "--config", config_file(), option, value)
    assert outcome.code == 2 and message in outcome.err
    assert not (tmp_path / "runs").exists()


def test_rewiring_callbacks_at_different_sparsities_are_one_line(spsnn, config_file, tmp_path):
    trainer = tiny_trainer(tmp_path) | {
        "callbacks": [
            {"class_path": "lightning_modules.callbacks.RigL", "init_args": {"sparsity": 0.9}},
            {"class_path": "lightning_modules.callbacks.DeepR", "init_args": {"sparsity": 0.8}},
        ]
    }
    outcome = spsnn("fit", "--config", config_file(trainer=trainer))
    assert outcome.code == 2 and "must rewire the same layers at the same sparsity" in outcome.line
    assert not (tmp_path / "runs").exists()


def test_dale_without_excitatory_neurons_is_refused(spsnn, config_file, tmp_path):
    trainer = tiny_trainer(tmp_path) | {
        "callbacks": [
            {
                "class_path": "lightning_modules.callbacks.Dale",
                "init_args": {"excitatory_fraction": 0.0},
            }
        ]
    }
    outcome = spsnn("fit", "--config", config_file(trainer=trainer))
    assert outcome.code == 2 and "excitatory_fraction=0" in outcome.line


def test_integer_trainer_limits_stay_integers(spsnn, config_file, tmp_path):
    outcome = spsnn(
        "fit", "--config", config_file(), "--trainer.limit_train_batches", "1",
        "--trainer.max_epochs", "1", "--run.name", "one",
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    (run,) = (tmp_path / "runs" / "one").glob("version_*")
    saved = yaml.safe_load((run / "config.yaml").read_text())["trainer"]
    assert saved["limit_train_batches"] == 1 and isinstance(saved["limit_train_batches"], int)
    assert isinstance(saved["max_epochs"], int)
    steps = json.loads((run / "summary.json").read_text())
    assert steps["epochs"] == 1
    metrics = (run / "metrics.csv").read_text().splitlines()
    assert sum(1 for row in metrics if ",train_loss" in row or row.split(",")[-1]) >= 1
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 1  # one batch, not the whole epoch


def test_no_epochs_says_that_no_validation_ran(spsnn, config_file):
    outcome = spsnn("fit", "--config", config_file(), "--trainer.max_epochs", "0")
    assert outcome.code == 0, outcome.err
    assert "no validation ran" in outcome.out and "val_acc = 0.00" not in outcome.out


# --- what configs and checkpoints may import --------------------------------------------


def test_a_yaml_alias_bomb_is_refused_at_once(spsnn, tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    assert bomb.stat().st_size < 600
    outcome = spsnn("fit", "--config", bomb)
    assert outcome.code == 2 and "aliases expand to" in outcome.line


def test_a_checkpoints_foreign_class_path_is_not_imported_without_consent(spsnn, trained, tmp_path):
    config, _, last = trained
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["hyper_parameters"]["net"]["class_path"] = "shutil.rmtree"
    foreign = tmp_path / "foreign.ckpt"
    torch.save(checkpoint, foreign)
    outcome = spsnn(
        "test", "--config", config, "--ckpt_path", foreign, "--run.use_ckpt_hparams", "true"
    )
    assert outcome.code == 2
    assert "names classes outside" in outcome.line and "shutil.rmtree" in outcome.line


def tiny_trainer(tmp_path) -> dict:
    return {
        "max_epochs": 1,
        "default_root_dir": str(tmp_path / "runs"),
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "accelerator": "cpu",
    }


def test_an_absurd_network_size_is_named_not_allocated(spsnn, config_file, trained, tmp_path):
    net = {
        "class_path": "spatial_layers.SpatialSNN",
        "init_args": {"hidden_sizes": [100000, 100000], "max_delay": 3},
    }
    outcome = spsnn("fit", "--config", config_file(model={"net": net}))
    assert outcome.code == 2
    assert "SpatialDelay(100000 -> 100000) needs 46.6 GiB" in outcome.line
    _, _, last = trained
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["hyper_parameters"]["net"]["init_args"]["hidden_sizes"] = [100000, 100000]
    huge = tmp_path / "huge.ckpt"
    torch.save(checkpoint, huge)
    outcome = spsnn("export", huge, tmp_path / "huge.nir")
    assert outcome.code == 2 and "needs 46.6 GiB" in outcome.line


# --- spsnn report ----------------------------------------------------------------------


def test_report_keeps_configurations_apart_and_flags_a_seed_counted_twice(
    spsnn, config_file, tmp_path
):
    config = config_file()
    for epochs in ("1", "2"):
        outcome = spsnn(
            "fit", "--config", config, "--trainer.max_epochs", epochs, "--run.name", "r"
        )
        assert outcome.code == 0, outcome.err
    runs = tmp_path / "runs"
    shutil.copytree(runs, tmp_path / "copy")  # the same runs found twice
    outcome = spsnn("report", runs, tmp_path / "copy")
    assert outcome.code == 0
    rows = [line for line in outcome.out.splitlines() if line.startswith("| r ")]
    assert len(rows) == 2
    assert any("[trainer.max_epochs=1]" in row for row in rows)
    assert any("[trainer.max_epochs=2]" in row for row in rows)
    assert all("7, 7 (repeated: 7)" in row for row in rows)
    assert "counts seeds [7] more than once" in outcome.err


def test_a_config_delta_that_replaces_the_recipes_callbacks_says_so(spsnn, config_file, tmp_path):
    base = config_file()
    delta = tmp_path / "delta.yaml"
    rigl = {"class_path": "lightning_modules.callbacks.RigL", "init_args": {"sparsity": 0.5}}
    delta.write_text(yaml.safe_dump({"trainer": {"callbacks": [rigl], "max_epochs": 1}}))
    outcome = spsnn("fit", "--config", base, "--config", delta)
    assert outcome.code == 0, outcome.err
    assert f"spsnn: {delta}: its trainer.callbacks list replaces SigmaAnnealing" in outcome.err
    appended = tmp_path / "appended.yaml"
    appended.write_text(yaml.safe_dump({"trainer": {"callbacks+": [rigl], "max_epochs": 1}}))
    outcome = spsnn("fit", "--config", base, "--config", appended)
    assert outcome.code == 0 and "replaces" not in outcome.err


# --- verbs, config files, seeds and Trainer options the command refuses -----------------


def test_an_unknown_command_names_the_closest_and_every_command(spsnn):
    outcome = spsnn("fitt", "--config", "recipes/yinyang.yaml")
    assert outcome.code == 2
    assert outcome.err == (
        "spsnn: error: unknown command 'fitt' (did you mean 'fit'?): the commands are fit, "
        "validate, test, predict, export, report, analyze; spsnn --help describes them\n"
    )


@pytest.mark.parametrize(
    ("text", "kind"),
    [("", "empty"), ("- a\n- b\n", "holds a list"), ("fit\n", "holds a single value"),
     ("seed_everything: 1\n---\nseed_everything: 2\n", "2 YAML documents")],
    ids=["empty", "list", "scalar", "documents"],
)  # fmt: skip
def test_a_config_that_is_not_one_mapping_says_what_it_holds(text, kind, spsnn, tmp_path):
    config = tmp_path / "delta.yaml"
    config.write_text(text)
    outcome = spsnn("fit", "--config", config)
    assert outcome.code == 2
    assert outcome.line == (
        f"spsnn fit: error: --config {config}: {kind}, not one YAML mapping of sections "
        "(seed_everything:, trainer:, model:, data:, run:)"
    )


def test_seed_everything_true_draws_a_seed_and_a_seed_out_of_range_is_named(
    spsnn, config_file, tmp_path
):
    outcome = spsnn("fit", "--config", config_file(), "--seed_everything", "-1")
    assert outcome.code == 2 and outcome.line == (
        "spsnn fit: error: --seed_everything -1: a seed is an int from 0 to 4294967295, or "
        "true for a random one (false: no seeding)"
    )
    assert not (tmp_path / "runs").exists()
    outcome = spsnn(
        "fit", "--config", config_file(), "--seed_everything", "true", "--trainer.max_epochs",
        "1", "--trainer.limit_train_batches", "1", "--run.test_after_fit", "false",
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    notice = next(line for line in outcome.err.splitlines() if "drew seed" in line)
    drawn = int(notice.split("drew seed ")[1].split()[0])
    (run,) = (tmp_path / "runs" / "tiny").glob("version_*")
    assert json.loads((run / "summary.json").read_text())["seed"] == drawn
    assert yaml.safe_load((run / "config.yaml").read_text())["seed_everything"] == drawn
    assert drawn != 0  # Lightning's seed_everything() takes 0 (chance 2**-32)


def test_a_trainer_option_lightning_refuses_is_one_line_and_leaves_no_run(
    spsnn, config_file, tmp_path, monkeypatch
):
    monkeypatch.setenv("WANDB_MODE", "offline")  # W&B on: its run folder is made first
    outcome = spsnn(
        "fit", "--config", config_file(), "--trainer.max_epochs", "-5", "--run.wandb", "true"
    )
    assert outcome.code == 2
    assert outcome.line == (
        "spsnn fit: error: trainer: `max_epochs` must be a non-negative integer or -1. You "
        "passed in -5."
    )
    assert not (tmp_path / "runs").exists()


def test_an_output_under_a_file_says_it_is_a_file(spsnn, trained, tmp_path):
    _, _, last = trained
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    outcome = spsnn("export", last, a_file / "out.nir")
    assert outcome.code == 2
    assert outcome.line == (
        f"spsnn export: error: {a_file / 'out.nir'}: {a_file} is a file, not a folder"
    )


# --- trial runs ----------------------------------------------------------------------


def test_a_fast_dev_run_writes_nothing_a_report_reads_and_says_so(spsnn, config_file, trained):
    """Lightning gives a fast_dev_run no logger: summary.json and the plots went into the
    root folder itself (run_name ""), and spsnn report listed a few batches as a run."""
    config = config_file()
    root = Path(yaml.safe_load(config.read_text())["trainer"]["default_root_dir"])
    note = (
        "spsnn: --trainer.fast_dev_run: a trial of a few batches, not a run: nothing was "
        "written (no summary.json, plots, checkpoints or predictions; spsnn report will not "
        "list it)"
    )
    outcome = spsnn("fit", "--config", config, "--trainer.fast_dev_run", "true")
    assert outcome.code == 0, outcome.err
    assert outcome.line == note
    # no number to copy: neither spsnn's result box nor Lightning's table of test metrics
    assert "test_acc" not in outcome.out and "epochs" not in outcome.out
    assert "spsnn: fast_dev_run trial: fit and test ran 1 batch each; no accuracy is " in (
        outcome.out
    )
    assert not root.exists() or not any(root.rglob("*"))
    _, run, last = trained
    outcome = spsnn(
        "predict", "--config", config, "--ckpt_path", last, "--trainer.fast_dev_run", "1"
    )
    assert outcome.code == 0 and outcome.line == note
    assert not list(run.parent.rglob("predictions*.csv"))


def test_an_unseeded_run_records_no_seed_and_report_flags_it(
    spsnn, config_file, tmp_path, monkeypatch
):
    """--seed_everything false recorded a seed left in the environment (PL_GLOBAL_SEED, set
    by an earlier run in this process), and spsnn report crashed sorting a null seed."""
    monkeypatch.setenv("PL_GLOBAL_SEED", "123")  # what an earlier seeded run leaves
    config = config_file()
    short = ("--trainer.max_epochs", "1", "--run.name", "r")
    outcome = spsnn("fit", "--config", config, "--seed_everything", "false", *short)
    assert outcome.code == 0, outcome.err
    assert "spsnn: --seed_everything false: an unseeded run (seed null in summary.json)" in (
        outcome.err
    )
    (run,) = (tmp_path / "runs" / "r").glob("version_*")
    assert json.loads((run / "summary.json").read_text())["seed"] is None
    assert spsnn("fit", "--config", config, *short).code == 0  # seed 7
    outcome = spsnn("report", tmp_path / "runs")
    assert outcome.code == 0, outcome.err
    (row,) = [line for line in outcome.out.splitlines() if line.startswith("| r ")]
    assert row.startswith("| r | 2 | 7, unseeded | ")
    assert outcome.line == (
        "spsnn report: 'r' has 1 unseeded run(s) (--seed_everything false: seed null), "
        "which nobody can repeat"
    )


@pytest.mark.parametrize("name", ["out.txt", "out"])
def test_export_to_a_file_not_named_as_nir_is_refused(name, spsnn, trained, tmp_path):
    """NIR files are HDF5: `spsnn export CKPT out.txt` wrote HDF5 under a text name."""
    _, _, last = trained
    outcome = spsnn("export", last, tmp_path / name)
    assert outcome.code == 2
    assert outcome.line == (
        f"spsnn export: error: {tmp_path / name}: a NIR file is HDF5 and is named *.nir (or "
        f".h5, .hdf5); give e.g. {tmp_path / 'out.nir'}"
    )
    assert not (tmp_path / name).exists()


def test_precision_16_on_a_cpu_is_refused_naming_what_would_run(spsnn, config_file, tmp_path):
    """Lightning runs `precision 16` on a CPU as bf16-mixed (a warning), while config.yaml
    recorded 16."""
    outcome = spsnn("fit", "--config", config_file(), "--trainer.precision", "16")
    assert outcome.code == 2
    assert outcome.line == (
        "spsnn fit: error: trainer.precision 16: Lightning would run bf16-mixed on this "
        "CPUAccelerator instead, and config.yaml would say 16; give --trainer.precision "
        "bf16-mixed (or 32-true)"
    )
    assert not (tmp_path / "runs").exists()


def test_a_checkpoint_of_another_input_width_names_the_data_not_hparams(spsnn, trained):
    """num_inputs is the data's: the refusal names the data fix, not --run.use_ckpt_hparams
    (which cannot make 4 channels into 5)."""
    config, _, last = trained
    outcome = spsnn(
        "test", "--config", config, "--ckpt_path", last, "--data.init_args.bias_step", "null"
    )
    assert outcome.code == 2
    assert outcome.line.startswith(
        f"spsnn test: error: --ckpt_path {last} holds a network trained on another input than this "
        "command's data gives: model.net.init_args.num_inputs: checkpoint 5, command 4"
    ), outcome.line
    assert "use_ckpt_hparams" not in outcome.line


# --- parse errors: one line naming the key, the value and what is valid ---------------

SPATIAL_SNN_ARGS = ", ".join(inspect.signature(SpatialSNN).parameters)
KEYS = (
    "checkpoint, ckpt_path, data, layout_analysis, layout_plots, model, predictions, run, "
    "seed_everything, summary, trainer"
)


@pytest.mark.parametrize("verb", ["fit", "test", "validate", "predict"])
def test_an_unknown_argument_of_a_class_names_the_key_and_the_arguments(verb, spsnn, config_file):
    """jsonargparse printed its usage text (~90 lines) ending in ``error: Parser key
    "model.net":``, which names neither the argument nor what the class takes."""
    outcome = spsnn(verb, "--config", config_file(), "--model.net.init_args.hiden_sizes", "3")
    assert outcome.code == 2 and len(outcome.err.splitlines()) == 1, outcome.err
    assert outcome.line == (
        f"spsnn {verb}: error: model.net.init_args has no argument 'hiden_sizes' (SpatialSNN "
        f"takes: {SPATIAL_SNN_ARGS}; did you mean 'hidden_sizes'?)"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("--modell.x", "1"),
         f"modell.x: no key 'modell' (the keys: {KEYS}, weights_only; did you mean 'model'?)"),
        (("--model.lrr", "1"),
         "model has no argument 'lrr' (model takes: cuda_graphs, eval_kernel, label_smoothing, "
         "lr, net, num_steps, optimizer, peak_lr, position_lr, position_scheduler, readout, "
         "scheduler, weight_decay, wiring_cost; did you mean 'lr'?)"),
        (("--model.net.init_args.hidden_sizes", "abc"),
         "model.net.init_args.hidden_sizes abc: expected a list such as [64, 64]"),
        (("--trainer.max_epochs", "1.5"), "trainer.max_epochs 1.5: expected an int or null"),
        (("--model.readout", "maxx"),
         "model.readout maxx: expected one of max, sum, mean, spike_count (did you mean 'max'?)"),
        (("--model.lr", "abc"),
         "model.lr abc: expected a float > 0 (could not convert string to float: 'abc')"),
        (("--model.net", "spatial_layers.Nope"),
         "model.net spatial_layers.Nope: no such class (module 'spatial_layers' has no "
         "attribute 'Nope'; spatial_layers has: SpatialSNN)"),
        (("--data.init_args.batchsize", "3"),
         "data.init_args has no argument 'batchsize' (YinYangDataModule takes: batch_size, "
         "num_steps, t_min, t_max, bias_step, rounding, train_size, val_size, test_size, "
         "train_seed, val_seed, test_seed, r_small, r_big, seed, num_workers; did you mean "
         "'batch_size'?)"),
        (("extra",),
         "unexpected argument 'extra': options are given as --key value (a recipe: --config "
         "FILE)"),
    ],
    ids=["section", "model-key", "list", "int", "choice", "float", "class", "data-key", "word"],
)  # fmt: skip
def test_a_parse_error_on_the_command_line_is_one_line(args, line, spsnn, config_file, tmp_path):
    outcome = spsnn("fit", "--config", config_file(), *args)
    assert outcome.code == 2 and len(outcome.err.splitlines()) == 1, outcome.err
    assert outcome.line == f"spsnn fit: error: {line}"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("model:\n  net:\n    init_args:\n      hidden_sizez: [4]\n",
         f"model.net.init_args has no argument 'hidden_sizez' (SpatialSNN takes: "
         f"{SPATIAL_SNN_ARGS}; did you mean 'hidden_sizes'?)"),
        ("data:\n  init_args:\n    batch_size: lots\n",
         "data.init_args.batch_size lots: expected an int"),
        ("trainr:\n  max_epochs: 1\n",
         f"trainr.max_epochs: no key 'trainr' (the keys: {KEYS}, weights_only; did you mean "
         "'trainer'?)"),
    ],
    ids=["class-argument", "value", "section"],
)  # fmt: skip
def test_a_parse_error_in_a_config_file_names_the_file(text, line, spsnn, config_file, tmp_path):
    delta = tmp_path / "delta.yaml"
    delta.write_text(text)
    outcome = spsnn("fit", "--config", config_file(), "--config", delta)
    assert outcome.code == 2 and len(outcome.err.splitlines()) == 1, outcome.err
    assert outcome.line == f"spsnn fit: error: --config {delta}: {line}"


def test_fit_without_a_recipe_or_with_a_missing_file_says_what_to_give(spsnn, tmp_path):
    outcome = spsnn("fit")
    assert outcome.code == 2 and outcome.line == (
        "spsnn fit: error: model.net and data not given: give a recipe (--config "
        "recipes/yinyang.yaml) or --model.net and --data"
    )
    outcome = spsnn("fit", "--config", tmp_path / "absent.yaml")
    assert outcome.code == 2
    assert outcome.line == f"spsnn fit: error: --config {tmp_path / 'absent.yaml'}: no such file"


def test_spsnn_debug_shows_jsonargparse_s_message_and_a_value_it_cannot_read_is_named(
    spsnn, config_file, monkeypatch
):
    """SPSNN_DEBUG=false turned tracebacks on (any value but "" and "0" did)."""
    monkeypatch.setenv("SPSNN_DEBUG", "1")
    outcome = spsnn("fit", "--config", config_file(), "--model.net.init_args.nonexistent", "3")
    assert outcome.code == 2 and 'error: Parser key "model.net":' in outcome.err
    assert outcome.line.strip() == "Option 'nonexistent' is not accepted"
    monkeypatch.setenv("SPSNN_DEBUG", "false")
    outcome = spsnn("fit", "--config", config_file(), "--model.net.init_args.nonexistent", "3")
    assert outcome.code == 2 and outcome.line.startswith(
        "spsnn fit: error: model.net.init_args has no argument 'nonexistent' ("
    )
    monkeypatch.setenv("SPSNN_DEBUG", "maybe")
    outcome = spsnn("fit", "--config", config_file())
    assert outcome.code == 2 and outcome.line == (
        "spsnn: error: SPSNN_DEBUG=maybe: give SPSNN_DEBUG=1 to see tracebacks, or 0 (or "
        "unset it) for one-line errors"
    )


def test_an_abbreviated_option_is_refused_naming_the_full_one(spsnn, config_file, tmp_path):
    """``--trainer.max_epoch 3`` ran as --trainer.max_epochs 3 (argparse's abbreviations,
    deprecated by jsonargparse): a typo could silently set another option."""
    outcome = spsnn("fit", "--config", config_file(), "--trainer.max_epoch", "3")
    assert outcome.code == 2 and outcome.line.startswith(
        "spsnn fit: error: trainer has no argument 'max_epoch' (trainer takes: "
    )
    assert outcome.line.endswith("; did you mean 'max_epochs'?)")
    assert not (tmp_path / "runs").exists()
