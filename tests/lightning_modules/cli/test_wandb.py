"""W&B as its users expect: sweeps reach their runs, one config, artifacts, one LR monitor."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import WandbLogger

import lightning_modules.cli.lightning as cli_module
from lightning_modules.cli import make_cli
from lightning_modules.cli.lightning import wandb_mode

ROOT = Path(__file__).resolve().parents[3]
SWEEP = ROOT / "recipes" / "sweeps" / "yinyang_lr.yaml"


def tiny(tmp_path: Path) -> Path:
    config = {
        "seed_everything": 7,
        "trainer": {
            "max_epochs": 1, "default_root_dir": str(tmp_path / "runs"),
            "enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu",
        },
        "model": {
            "net": {
                "class_path": "spatial_layers.SpatialSNN",
                "init_args": {"hidden_sizes": [8], "max_delay": 3, "init_gain": 4.0},
            },
        },
        "data": {
            "class_path": "lightning_modules.data.YinYangDataModule",
            "init_args": {"batch_size": 16, "num_steps": 12, "t_max": 8.0, "train_size": 64,
                          "val_size": 32, "test_size": 32},
        },
    }  # fmt: skip
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["spsnn"])
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def test_the_mode_is_offline_unless_the_user_or_a_sweep_agent_decides(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_SWEEP_ID", raising=False)
    assert wandb_mode(None) == "offline"
    monkeypatch.setenv("WANDB_SWEEP_ID", "abc123")  # what `wandb agent` sets for its runs
    assert wandb_mode(None) is None
    monkeypatch.setenv("WANDB_MODE", "online")
    assert wandb_mode(None) is None
    assert wandb_mode("disabled") == "disabled"


def test_the_sweep_example_reaches_the_run_config_through_the_agents_arguments(offline):
    sweep = yaml.safe_load(SWEEP.read_text())
    choice = {name: spec["values"][-1] for name, spec in sweep["parameters"].items()}
    args = [f"--{name}={value}" for name, value in choice.items()]  # the agent's ${args}
    command = [part for part in sweep["command"] if part != "${args}"]
    assert command[:2] == ["spsnn", "fit"]
    cli = make_cli([*command[2:], *args, "--trainer.max_epochs", "0"], run=False)
    assert cli.model.hparams.lr == choice["model.lr"]
    assert cli.model.hparams.position_lr == choice["model.position_lr"]
    assert cli.config.seed_everything == choice["seed_everything"]


def test_one_config_one_lr_monitor_and_the_model_as_an_artifact(offline, tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(
        cli_module, "log_artifact", lambda run, path, kind: logged.append((Path(path), kind))
    )
    options = ["--run.wandb_log_model", "true", "--trainer.callbacks+=LearningRateMonitor"]
    cli = make_cli(["fit", "--config", str(tiny(tmp_path)), *options])
    (logger,) = [lg for lg in cli.trainer.loggers if isinstance(lg, WandbLogger)]
    config = dict(logger.experiment.config)
    assert config["seed_everything"] == 7 and "seed" not in config and "lr" not in config
    assert config["model"]["lr"] == cli.model.hparams.lr  # the CLI's resolved config
    monitors = [c for c in cli.trainer.callbacks if isinstance(c, LearningRateMonitor)]
    assert len(monitors) == 1
    (run,) = (tmp_path / "runs" / "tiny").glob("version_*")
    assert logged == [(run / "checkpoints" / "last.ckpt", "model")]
