"""Tiny configs, quiet trainers and run folders for the training-stack tests.

The configs fit in seconds (Yin-Yang, 2 epochs, 8 hidden neurons); the trainers run on
the CPU without logger, progress bar, model summary or checkpoints unless asked.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import yaml

REPO = Path(__file__).resolve().parents[2]


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


def quiet_steps_trainer(callbacks: list, max_steps: int) -> L.Trainer:
    """A CPU Trainer of ``max_steps`` steps without logger, checkpoints, bars or validation
    (files, if any, under the working directory)."""
    return quiet_trainer(
        Path.cwd(), callbacks, max_epochs=None, max_steps=max_steps, limit_val_batches=0
    )


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


def run_dirs(root: Path, name: str = "tiny") -> list[Path]:
    return sorted((root / name).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))


def tiny_yinyang_fit(
    root: Path, *extra: str, hidden: int = 8, test_size: int = 24, wandb: bool = False
) -> list[str]:
    """``spsnn fit`` arguments of a one-epoch 5-``hidden``-3 Yin-Yang run named ``tiny`` under
    ``root`` (W&B off unless ``wandb``: then the run's mode, e.g. ``WANDB_MODE``, decides)."""
    return [
        "fit", "--data", "lightning_modules.data.YinYangDataModule",
        "--data.init_args.train_size", "48", "--data.init_args.val_size", "16",
        "--data.init_args.test_size", str(test_size), "--data.init_args.batch_size", "16",
        "--data.init_args.num_steps", "12", "--data.init_args.t_max", "8",
        "--model.net.init_args.hidden_sizes", f"[{hidden}]",
        "--model.net.init_args.max_delay", "3", "--model.net.init_args.init_gain", "4.0",
        "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(root),
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.accelerator", "cpu", "--run.wandb", str(wandb).lower(), "--run.name", "tiny",
        *extra,
    ]  # fmt: skip
