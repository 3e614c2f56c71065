"""Fixtures of the fault suite: a tiny trained run to misuse, and the spsnn entry point.

Each fault test drives ``spsnn`` as a user does (``lightning_modules.cli.main``) and
asserts the exact outcome: exit status 2 and one line on stderr naming the problem, no
traceback; or the correct number.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from lightning_modules.cli import main


@dataclass
class Outcome:
    """What one ``spsnn`` command did: exit status, stdout, stderr."""

    code: int
    out: str
    err: str

    @property
    def line(self) -> str:
        """The last line on stderr (the error line of a refusal)."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def tiny_config(root: Path, **sections) -> dict:
    """A complete config for a seconds-long Yin-Yang fit (2 epochs, 8 hidden neurons)."""
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
                "class_path": "spatial_layers.SpatialSNN",
                "init_args": {"hidden_sizes": [8], "max_delay": 3, "init_gain": 4.0},
            },
            "lr": 0.01,
            "position_lr": 0.05,
        },
        "data": {
            "class_path": "lightning_modules.data.YinYangDataModule",
            "init_args": {
                "batch_size": 16, "num_steps": 12, "t_max": 8.0,
                "train_size": 64, "val_size": 32, "test_size": 32,
            },
        },
        "run": {"wandb": False},
    }  # fmt: skip
    for name, value in sections.items():
        config[name] = value
    return config


def write_yaml(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def config_file(tmp_path):
    """``config_file(**sections)``: a tiny config (sections replaced) written to a file."""
    count = iter(range(1000))

    def write(**sections) -> Path:
        path = tmp_path / f"config{next(count)}.yaml"
        return write_yaml(path, tiny_config(tmp_path / "runs", **sections))

    return write


@pytest.fixture
def spsnn(capsys, monkeypatch):
    """Runs ``spsnn ARGS...`` in this process and returns its :class:`Outcome`."""
    monkeypatch.setattr(sys, "argv", ["spsnn"])
    monkeypatch.delenv("SPSNN_DEBUG", raising=False)

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        _log_to_current_stderr()
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as exit_info:
            code = exit_info.code if isinstance(exit_info.code, int) else 1
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err, captured.err
        return Outcome(code, captured.out, captured.err)

    return run


def _log_to_current_stderr() -> None:
    """Points the stream handlers of Lightning's loggers at this test's stderr (they keep
    the stream of the test that first imported Lightning, closed since)."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.stream = sys.stderr  # setStream would flush the closed one


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained run: ``(config path, run folder, last.ckpt)``."""
    root = tmp_path_factory.mktemp("trained")
    config = write_yaml(root / "tiny.yaml", tiny_config(root / "runs"))
    saved = sys.argv
    sys.argv = ["spsnn"]
    _log_to_current_stderr()
    try:
        main(["fit", "--config", str(config)])
    finally:
        sys.argv = saved
    (run,) = (root / "runs" / "tiny").glob("version_*")
    return config, run, run / "checkpoints" / "last.ckpt"
