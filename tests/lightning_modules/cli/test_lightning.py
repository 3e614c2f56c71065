"""The spsnn command end to end: fit -> test -> summary.json + plots, subcommands, bad configs;
a resumed run equals the uninterrupted one, and DDP keeps ranks identical."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from lightning_modules.callbacks.predictions import read_predictions
from lightning_modules.classifier import SpikingClassifier
from lightning_modules.cli import make_cli
from lightning_modules.summary import SUMMARY_KEYS
from tests.helpers.checkpoints import bad_checkpoint
from tests.helpers.probes import differing_keys, refusal_line
from tests.helpers.training import REPO, run_dirs, set_key, tiny_config, write_config


def read_metrics(run_dir):
    with open(run_dir / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def wandb_runs(monkeypatch) -> list[dict]:
    """What each W&B run holds when it finishes (offline runs keep it in a binary log)."""
    from wandb.sdk.wandb_run import Run

    runs: list[dict] = []
    finish = Run.finish

    def recording_finish(run, *args, **kwargs):
        runs.append(
            {
                "name": run.name,
                "group": run.group,
                "tags": list(run.tags),
                "job_type": run.job_type,
                "project": run.project,
                "config": dict(run.config),
                "summary": dict(run.summary),
                "files": sorted(p.name for p in Path(run.dir).iterdir()),
            }
        )
        return finish(run, *args, **kwargs)

    monkeypatch.setattr(Run, "finish", recording_finish)
    return runs


def test_fit_writes_summary_plots_checkpoints_and_offline_wandb(
    tmp_path, cli_argv, capsys, monkeypatch, wandb_runs
):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    config = write_config(
        tmp_path / "tiny.yaml",
        tiny_config(tmp_path / "runs", run={"name": "tiny", "wandb": True}),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_cli(["fit", "--config", str(config)])
    assert not [w for w in caught if "is not empty" in str(w.message)]  # W&B and CSV share it
    assert os.environ["WANDB_MODE"] == "offline"  # set because the user had not
    monkeypatch.setenv("WANDB_MODE", "offline")  # (so monkeypatch removes it afterwards)

    (run_dir,) = run_dirs(tmp_path / "runs")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(SUMMARY_KEYS) <= set(summary)
    assert summary["test_acc_epoch"] == "last" and summary["epochs"] == 2
    assert 0.0 <= summary["test_acc"] <= 1.0 and 0.0 <= summary["val_acc"] <= 1.0
    # 5 inputs (4 features + bias spike), 8 hidden, 3 outputs, D = 2
    assert summary["n_weights"] == 5 * 8 + 8 * 3
    assert summary["n_coordinates"] == (5 + 8 + 3) * 2
    assert summary["n_params"] == summary["n_weights"] + summary["n_coordinates"]
    assert summary["sparsity"] == 0.0 and summary["wall_time_s"] > 0
    for name in ("layout.png", "delays.png"):
        assert (run_dir / name).read_bytes()[:4] == b"\x89PNG"
    assert list((run_dir / "wandb").glob("offline-run-*"))
    rows = read_metrics(run_dir)
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "test_acc"} <= set(rows[0])
    test_acc = [float(r["test_acc"]) for r in rows if r["test_acc"]]
    assert test_acc == [pytest.approx(summary["test_acc"])]
    # the checkpoint holds nothing but plain data: it loads without running code
    last = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True, map_location="cpu")
    assert checkpoint["epoch"] == 1
    assert any(key.endswith(".kernel_sigma") for key in checkpoint["state_dict"])
    assert summary["checkpoint"] == str(last)
    out = capsys.readouterr().out
    assert f"test_acc = {100 * summary['test_acc']:.2f} %" in out
    assert "lr-Adam/weights" in rows[0] and "lr-Adam/positions" in rows[0]

    # W&B: named by recipe, seed and version, grouped by recipe, the whole config,
    # summary.json in the summary and with the run's files, the learning rate logged.
    (run,) = wandb_runs
    assert run["name"] == "tiny-seed7-version_0" and run["group"] == "tiny"
    assert run["tags"] == ["tiny", "seed7"] and run["job_type"] == "fit"
    assert run["config"]["seed_everything"] == 7
    assert run["config"]["trainer"]["max_epochs"] == 2
    callbacks = [c["class_path"] for c in run["config"]["trainer"]["callbacks"]]
    assert callbacks == ["lightning_modules.callbacks.SigmaAnnealing"]
    assert run["config"]["checkpoint"]["monitor"] == "val_acc"
    assert run["config"]["model"]["net"]["init_args"]["hidden_sizes"] == [8]
    for key in SUMMARY_KEYS:
        assert run["summary"][key] == summary[key], key
    assert run["summary"]["lr-Adam/weights"] > 0
    assert "summary.json" in run["files"]

    # spsnn test of the same run logs to the same project and group.
    make_cli(["test", "--config", str(config), "--ckpt_path", str(last)])
    tested = wandb_runs[1]
    assert (tested["project"], tested["group"], tested["job_type"]) == (
        run["project"],
        "tiny",
        "test",
    )
    assert tested["name"] == "tiny-seed7-version_1"
    assert tested["summary"]["test_acc"] == pytest.approx(summary["test_acc"])


def test_best_val_checkpoint_and_user_wandb_mode(tmp_path, cli_argv, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    config = tiny_config(tmp_path / "runs", summary={"test_ckpt": "best_val"})
    config["trainer"]["max_epochs"] = 3
    make_cli(["fit", "--config", str(write_config(tmp_path / "c.yaml", config))])
    assert os.environ["WANDB_MODE"] == "disabled"
    (run_dir,) = run_dirs(tmp_path / "runs")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_acc_epoch"] == "best_val"
    assert "best-epoch" in summary["checkpoint"]
    val_accs = [float(r["val_acc"]) for r in read_metrics(run_dir) if r["val_acc"]]
    assert summary["val_acc"] == pytest.approx(max(val_accs))
    assert val_accs[summary["best_val_epoch"]] == pytest.approx(max(val_accs))


def test_validate_test_and_predict_from_a_checkpoint(tmp_path, tiny_yaml, cli_argv, capsys):
    make_cli(["fit", "--config", str(tiny_yaml), "--trainer.max_epochs", "1"])
    (run_dir,) = run_dirs(tmp_path / "runs")
    last = str(run_dir / "checkpoints" / "last.ckpt")
    summary = json.loads((run_dir / "summary.json").read_text())
    cli = make_cli(["test", "--config", str(tiny_yaml), "--ckpt_path", last])
    assert cli.trainer.callback_metrics["test_acc"].item() == pytest.approx(summary["test_acc"])
    cli = make_cli(["validate", "--config", str(tiny_yaml), "--ckpt_path", last])
    assert cli.trainer.callback_metrics["val_acc"].item() == pytest.approx(summary["val_acc"])
    # predict: every test sample's class and readout, in a file in the run directory
    cli = make_cli(["predict", "--config", str(tiny_yaml), "--ckpt_path", last])
    path = next((tmp_path / "runs" / "tiny").glob("version_*/predictions.csv"))
    assert f"predictions written to {path}" in capsys.readouterr().out
    written = read_predictions(path)
    spikes, labels = (
        torch.cat(parts) for parts in zip(*cli.datamodule.test_dataloader(), strict=True)
    )
    with torch.no_grad():
        readout = cli.model.eval()(spikes)
    assert torch.equal(written["sample"], torch.arange(32))
    assert torch.equal(written["label"], labels)
    assert torch.equal(written["prediction"], readout.argmax(-1))
    torch.testing.assert_close(written["readout"], readout)
    accuracy = (written["prediction"] == labels).float().mean().item()
    assert accuracy == pytest.approx(summary["test_acc"])
    # a CLI checkpoint rebuilds its classifier, network included, from itself alone
    loaded = SpikingClassifier.load_from_checkpoint(last)
    assert loaded.net.init_args == cli.model.net.init_args
    assert (loaded.net.num_inputs, loaded.net.num_classes) == (5, 3)  # linked from the data
    state = torch.load(last, weights_only=True)["state_dict"]
    assert not differing_keys(loaded.state_dict(), state)


def test_print_config_shows_linked_defaults(tiny_yaml, cli_argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        make_cli(["fit", "--config", str(tiny_yaml), "--print_config"])
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out
    assert "hidden_sizes:" in out and "YinYangDataModule" in out and "test_ckpt: last" in out
    assert "weights_only: true" in out  # checkpoints load as data, never as code


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("model.net.init_args.hiden_sizes", [8], ["hiden_sizes"]),  # unknown key
        ("model.lr", "fast", ["model.lr"]),  # wrong type
        ("model.net.init_args.max_delay", -3, ["model.net", "max_delay"]),  # negative delay
        ("model.readout", "median", ["model.readout"]),  # not a choice
        ("trainer.max_epoch", 3, ["max_epoch"]),  # unknown trainer key
        ("summary.test_ckpt", "best_test", ["summary.test_ckpt"]),  # no selection on test
        # refused by a constructor, not the parser: its own message, without a traceback
        ("data.init_args.batch_size", 0, ["could not build", "batch_size must be an int >= 1"]),
        ("model.net.init_args.dropout", 1.0, ["could not build", "dropout must be in [0, 1)"]),
        # spatial delays that all clamp to 0: coordinates that could never learn
        ("model.net.init_args.max_delay", 0, ["could not build", "max_delay=0", "delays='none'"]),
    ],
)
def test_bad_config_fails_before_training_naming_the_key(
    tmp_path, cli_argv, capsys, key, value, named
):
    config = tiny_config(tmp_path / "runs")
    set_key(config, key, value)
    path = write_config(tmp_path / "bad.yaml", config)
    with pytest.raises(SystemExit) as exit_info:
        make_cli(["fit", "--config", str(path)])
    assert exit_info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert all(part in err for part in named), err
    assert not (tmp_path / "runs").exists()  # nothing started


def test_bad_command_line_value_names_the_key(tiny_yaml, cli_argv, capsys):
    with pytest.raises(SystemExit):
        make_cli(["fit", "--config", str(tiny_yaml), "--model.net.init_args.max_delay", "-1"])
    err = capsys.readouterr().err
    assert "model.net" in err and "max_delay" in err


def test_spike_count_readout_needs_a_spiking_network(tiny_yaml, cli_argv, capsys):
    with pytest.raises(SystemExit):
        make_cli(["fit", "--config", str(tiny_yaml), "--model.readout", "spike_count"])
    assert "spiking_output" in capsys.readouterr().err
    spiking = ["--model.readout", "spike_count", "--model.net.init_args.spiking_output", "true"]
    cli = make_cli(["--config", str(tiny_yaml), *spiking], run=False)
    assert cli.model.net.spiking_output and cli.model.readout == "spike_count"


def test_missing_data_dir_fails_before_training(tmp_path, cli_argv, capsys):
    config = tiny_config(tmp_path / "runs")
    missing = tmp_path / "no_such_dir"
    config["data"] = {
        "class_path": "lightning_modules.data.SHDDataModule",
        "init_args": {"data_dir": str(missing)},
    }
    path = write_config(tmp_path / "shd.yaml", config)
    with pytest.raises((SystemExit, FileNotFoundError)) as error:
        make_cli(["fit", "--config", str(path)])
    message = capsys.readouterr().err + str(error.value)
    assert "data_dir" in message and str(missing) in message
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("subcommand", "kind"),
    [("fit", kind) for kind in ("missing", "directory", "empty", "truncated", "tensor")]
    + [("test", "truncated"), ("validate", "text")],
)
def test_a_bad_ckpt_path_is_one_line_and_starts_nothing(
    tmp_path, cli_argv, capsys, monkeypatch, subcommand, kind
):
    monkeypatch.setenv("WANDB_MODE", "offline")
    config = tiny_config(tmp_path / "runs", run={"name": "tiny", "wandb": True})
    path, message = bad_checkpoint(tmp_path, kind)
    with pytest.raises(SystemExit) as exit_info:
        make_cli([subcommand, "--config", str(write_config(tmp_path / "c.yaml", config)),
                  "--ckpt_path", str(path)])  # fmt: skip
    line = refusal_line(capsys, exit_info)
    assert f"--ckpt_path {path}: " in line and message in line
    assert not (tmp_path / "runs").exists()  # no run folder, no W&B run


def test_ckpt_path_never_silently_replaces_the_config(tmp_path, tiny_yaml, cli_argv, capsys):
    """The issue's case: a 2-D run's checkpoint given with a 3-D recipe and another lr."""
    make_cli(["fit", "--config", str(tiny_yaml), "--trainer.max_epochs", "1"])
    (first,) = run_dirs(tmp_path / "runs")
    last = str(first / "checkpoints" / "last.ckpt")
    other = ["--model.net.init_args.dim", "3", "--model.lr", "0.1"]
    with pytest.raises(SystemExit):
        make_cli(["fit", "--config", str(tiny_yaml), "--ckpt_path", last, *other])
    err = capsys.readouterr().err
    assert "model.net.init_args.dim: checkpoint 2, command 3" in err
    assert "model.lr: checkpoint 0.01, command 0.1" in err
    assert "--run.use_ckpt_hparams true" in err and str(first / "config.yaml") in err
    assert len(run_dirs(tmp_path / "runs")) == 1  # nothing started

    # extending the run: only trainer options differ, and the extra epoch trains
    make_cli(["fit", "--config", str(tiny_yaml), "--ckpt_path", last, "--trainer.max_epochs", "2"])
    extended = run_dirs(tmp_path / "runs")[-1]
    summary = json.loads((extended / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["resumed_from"] == last
    before = torch.load(last, weights_only=True)["state_dict"]
    after = torch.load(extended / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert {"net.hidden.0.synapses.weight", "net.positions.1.coords"} <= set(
        differing_keys(after, before)
    )

    # on purpose: the checkpoint's values, each one logged; the summary describes what ran
    with pytest.warns(UserWarning, match="model.net.init_args.dim: checkpoint 2, config 3"):
        make_cli(["fit", "--config", str(tiny_yaml), "--ckpt_path", last, *other,
                  "--run.use_ckpt_hparams", "true", "--trainer.max_epochs", "2"])  # fmt: skip
    summary = json.loads((run_dirs(tmp_path / "runs")[-1] / "summary.json").read_text())
    assert summary["dim"] == 2 and summary["net"]["init_args"]["dim"] == 2
    assert summary["n_coordinates"] == (5 + 8 + 3) * 2


def test_a_binary_config_and_a_root_dir_under_a_file_are_one_line(
    tmp_path, tiny_yaml, cli_argv, capsys
):
    binary = tmp_path / "weights.yaml"
    binary.write_bytes(bytes(range(128, 256)))
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = [
        (["fit", "--config", str(binary)], f"--config {binary}: not a text (YAML) file"),
        (["fit", "--config", str(tiny_yaml), "--trainer.default_root_dir", str(a_file / "runs")],
         f"{a_file} is a file, not a folder"),
    ]  # fmt: skip
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            make_cli(argv)
        assert message in refusal_line(capsys, exit_info)
    assert not (tmp_path / "runs").exists()


def test_a_recipe_callback_is_changed_by_its_arguments_not_by_appending_another(
    tiny_yaml, cli_argv, capsys
):
    from lightning_modules.callbacks import SigmaAnnealing

    cli = make_cli(["--config", str(tiny_yaml), "--trainer.callbacks.end", "0.25"], run=False)
    (annealing,) = [c for c in cli.trainer.callbacks if isinstance(c, SigmaAnnealing)]
    assert annealing.end == 0.25  # the fix the refusal below names does what it says
    appended = "--trainer.callbacks+=lightning_modules.callbacks.SigmaAnnealing"
    with pytest.raises(SystemExit) as exit_info:  # refused before any run folder exists
        make_cli(["fit", "--config", str(tiny_yaml), appended])
    line = refusal_line(capsys, exit_info)
    assert "2 SigmaAnnealing callbacks" in line and "--trainer.callbacks.<argument>" in line


# --- resume and DDP ------------------------------------------------------------------------------


def final_state(run_dir):
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return checkpoint["state_dict"], checkpoint


def val_history(run_dir):
    with open(run_dir / "metrics.csv") as handle:
        return [
            (int(r["epoch"]), float(r["val_acc"])) for r in csv.DictReader(handle) if r["val_acc"]
        ]


@pytest.mark.slow
def test_resumed_run_matches_uninterrupted_run(tmp_path, cli_argv):
    config = tiny_config(tmp_path / "runs")
    config["trainer"]["max_epochs"] = 3
    straight = write_config(tmp_path / "straight.yaml", config)
    make_cli(["fit", "--config", str(straight)])

    killed = dict(config, trainer=dict(config["trainer"]))
    killed["trainer"]["callbacks"] = [
        *config["trainer"]["callbacks"],
        {"class_path": "tests.helpers.probes.KillAtEpoch", "init_args": {"epoch": 1}},
    ]
    with pytest.raises(RuntimeError, match="killed"):
        make_cli(["fit", "--config", str(write_config(tmp_path / "killed.yaml", killed))])
    uninterrupted, interrupted = run_dirs(tmp_path / "runs")
    assert torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    assert not (interrupted / "summary.json").exists()

    last = str(interrupted / "checkpoints" / "last.ckpt")
    make_cli(["fit", "--config", str(straight), "--ckpt_path", last])
    resumed = run_dirs(tmp_path / "runs")[-1]

    reference, reference_ckpt = final_state(uninterrupted)
    state, ckpt = final_state(resumed)
    assert ckpt["epoch"] == reference_ckpt["epoch"] == 2
    assert ckpt["global_step"] == reference_ckpt["global_step"]
    assert not differing_keys(state, reference)
    assert any(key.endswith("kernel_sigma") for key in state)  # sigma compared above
    want = json.loads((uninterrupted / "summary.json").read_text())
    got = json.loads((resumed / "summary.json").read_text())
    assert (got["test_acc"], got["val_acc"], got["epochs"]) == (
        want["test_acc"], want["val_acc"], want["epochs"])  # fmt: skip
    assert val_history(resumed)[-1] == val_history(uninterrupted)[-1]


@pytest.mark.slow
def test_ddp_two_cpu_processes_keep_ranks_identical(tmp_path):
    """`strategy: ddp` with 2 gloo processes: every rank ends with the same weights and coordinates.

    Lightning's DDP launcher starts the second rank by re-running the command
    line, so the fit runs in a subprocess (``python -m lightning_modules.cli``),
    never inside pytest.
    """
    dumps = tmp_path / "states"
    config = tiny_config(tmp_path / "runs")
    config["trainer"].update(strategy="ddp", devices=2, accelerator="cpu", num_nodes=1)
    config["trainer"]["callbacks"] = [
        *config["trainer"]["callbacks"],
        {
            "class_path": "tests.helpers.probes.RankStateDump",
            "init_args": {"directory": str(dumps)},
        },
    ]
    path = write_config(tmp_path / "ddp.yaml", config)
    # From the repository root, `python -m` puts it on sys.path: the probe's class path
    # (tests.helpers.probes) imports in both ranks (rank 1 inherits the folder).
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PL_TORCH_DISTRIBUTED_BACKEND"] = "gloo"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "lightning_modules.cli", "fit", "--config", str(path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test_acc =" in done.stdout
    rank0_start, rank1_start = (torch.load(dumps / f"rank{r}_start.pt") for r in (0, 1))
    rank0, rank1 = (torch.load(dumps / f"rank{r}_end.pt") for r in (0, 1))
    coord_keys = [k for k in rank0 if k.endswith("coords")]
    weight_keys = [k for k in rank0 if k.endswith("weight")]
    assert coord_keys and weight_keys
    assert not differing_keys(rank0, rank1) and not differing_keys(rank0_start, rank1_start)
    # and they trained: coordinates and weights moved
    assert any(not torch.equal(rank0[k], rank0_start[k]) for k in coord_keys)
    assert any(not torch.equal(rank0[k], rank0_start[k]) for k in weight_keys)
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert json.loads((run_dir / "summary.json").read_text())["epochs"] == 2
    print(f"DDP fit with 2 CPU processes took {elapsed:.1f} s")


def ddp_command(*args: str) -> subprocess.CompletedProcess:
    """``spsnn ARGS`` in a subprocess from the repository root (Lightning's DDP launcher
    re-runs the command line for the other ranks), on gloo with one thread per rank."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PL_TORCH_DISTRIBUTED_BACKEND="gloo")
    env.pop("SPSNN_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "lightning_modules.cli", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


@pytest.mark.slow
def test_ddp_test_counts_every_sample_once(tmp_path, cli_argv):
    """17 test samples on 2 devices (ranks of 9 and 8 samples, 2 and 1 batches of 8): the
    test accuracy is the single-device one (Lightning's sampler counted 18, one twice)."""
    config = tiny_config(tmp_path / "runs")
    config["data"]["init_args"].update(test_size=17, batch_size=8)
    path = write_config(tmp_path / "tiny.yaml", config)
    make_cli(["fit", "--config", str(path)])
    (run_dir,) = run_dirs(tmp_path / "runs")
    single = json.loads((run_dir / "summary.json").read_text())["test_acc"]
    assert round(single * 17) == pytest.approx(single * 17, abs=1e-4)  # k of 17
    done = ddp_command(
        "test", "--config", str(path), "--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt"),
        "--trainer.devices", "2", "--trainer.strategy", "ddp",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [line for line in done.stdout.splitlines() if line.split()[:1] == ["test_acc"]]
    assert float(line.split()[1]) == pytest.approx(single, abs=1e-6)


@pytest.mark.slow
def test_ddp_refuses_a_user_loader_that_pads_the_test_split(tmp_path):
    """A user's DataModule with plain loaders and 17 test samples on 2 devices: Lightning's
    DistributedSampler would count 18; the command stops with one line naming the fix."""
    config = tiny_config(tmp_path / "runs")
    config["data"] = {"class_path": "tests.helpers.user_datamodules.OddTestSplit"}
    config["trainer"].update(strategy="ddp", devices=2)
    path = write_config(tmp_path / "odd.yaml", config)
    done = ddp_command("test", "--config", str(path), "--ckpt_path", "none")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert (  # every rank says it, their lines may meet
        "spsnn: error: the test loader's DistributedSampler repeats 1 of its 17 samples to give "
        "each of 2 devices as many, so test metrics would count 18: build the loader with "
        "sampler=lightning_modules.data.UnpaddedDistributedSampler(dataset, trainer.world_size, "
        "trainer.global_rank) (Lightning keeps it; spsnn's DataModules do this), make the split "
        "a multiple of 2, or evaluate with --trainer.devices 1\n"
    ) in done.stderr.replace("1spsnn: error", "1\nspsnn: error")
