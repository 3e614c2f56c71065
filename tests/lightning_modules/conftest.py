"""Fixtures of the training-stack tests: tiny configs that fit in seconds.

``lm_test_probes`` (callbacks the tests add by class path, also in DDP
subprocesses) lives beside this file; this directory is put on sys.path.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RECIPES = REPO / "recipes"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def tiny_config(root: Path, **overrides) -> dict:
    """A complete spsnn config for a seconds-long Yin-Yang fit (2 epochs, 8 hidden)."""
    config = {
        "seed_everything": 7,
        "trainer": {
            "max_epochs": 2,
            "default_root_dir": str(root),
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "log_every_n_steps": 1,
            "accelerator": "cpu",
            "callbacks": [{"class_path": "lightning_modules.callbacks.SigmaAnnealing"}],
        },
        "model": {
            "net": {
                "class_path": "spatial_layers.networks.SpatialSNN",
                "init_args": {
                    "hidden_sizes": [8],
                    "max_delay": 3,
                    "dropout": 0.2,
                    "init_gain": 4.0,
                },
            },
            "lr": 0.01,
            "position_lr": 0.05,
        },
        "data": {
            "class_path": "lightning_modules.data.YinYangDataModule",
            "init_args": {
                "batch_size": 16,
                "num_steps": 12,
                "t_max": 8.0,
                "train_size": 64,
                "val_size": 32,
                "test_size": 32,
            },
        },
        "run": {"name": "tiny", "wandb": False},
    }
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if name:
            config.setdefault(section, {})[name] = value
        else:
            config[section] = value
    return config


def quiet_trainer(tmp_path: Path, callbacks=(), **kwargs) -> L.Trainer:
    """A one-epoch CPU Trainer without logger, progress bar, model summary or checkpoints
    (``kwargs`` override any of these)."""
    options = {
        "default_root_dir": tmp_path,
        "max_epochs": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "accelerator": "cpu",
    }
    return L.Trainer(callbacks=list(callbacks), **{**options, **kwargs})


def set_key(config: dict, key: str, value) -> dict:
    """Sets the dotted ``key`` (e.g. ``"model.net.init_args.dim"``) of a nested config."""
    *sections, name = key.split(".")
    for section in sections:
        config = config.setdefault(section, {})
    config[name] = value
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def cli_argv(monkeypatch):
    """Keeps pytest's own argv away from LightningCLI."""
    monkeypatch.setattr(sys, "argv", ["spsnn"])


@pytest.fixture
def tiny_yaml(tmp_path) -> Path:
    return write_config(tmp_path / "tiny.yaml", tiny_config(tmp_path / "runs"))


def run_dirs(root: Path, name: str = "tiny") -> list[Path]:
    return sorted((root / name).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
