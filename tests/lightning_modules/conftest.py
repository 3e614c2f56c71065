"""Fixtures of the training-stack tests (their helpers: tests.helpers.training)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers.training import tiny_config, write_config


@pytest.fixture
def cli_argv(monkeypatch):
    """Keeps pytest's own argv away from LightningCLI."""
    monkeypatch.setattr(sys, "argv", ["spsnn"])


@pytest.fixture
def tiny_yaml(tmp_path) -> Path:
    return write_config(tmp_path / "tiny.yaml", tiny_config(tmp_path / "runs"))
