"""Checkpoint resume gives the uninterrupted run's result; DDP keeps ranks identical."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time

import pytest
import torch
from conftest import HERE, REPO, run_dirs, tiny_config, write_config
from lm_test_probes import differing_keys

from lightning_modules.cli import make_cli


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
        {"class_path": "lm_test_probes.KillAtEpoch", "init_args": {"epoch": 1}},
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
        {"class_path": "lm_test_probes.RankStateDump", "init_args": {"directory": str(dumps)}},
    ]
    path = write_config(tmp_path / "ddp.yaml", config)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(REPO)]), OMP_NUM_THREADS="1")
    env["PL_TORCH_DISTRIBUTED_BACKEND"] = "gloo"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "lightning_modules.cli", "fit", "--config", str(path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
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
