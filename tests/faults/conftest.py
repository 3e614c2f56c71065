"""Fixtures of the fault suite: a tiny trained run to misuse, and the spsnn entry point.

Each fault test drives ``spsnn`` as a user does (``lightning_modules.cli.main``) and
asserts the exact outcome: exit status 2 and one line on stderr naming the problem, no
traceback; or the correct number.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from lightning_modules.cli import main
from tests.helpers.logs import log_to_current_stderr
from tests.helpers.training import tiny_config, write_config


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


@pytest.fixture
def config_file(tmp_path):
    """``config_file(**sections)``: a tiny config (sections replaced) written to a file."""
    count = iter(range(1000))

    def write(**sections) -> Path:
        path = tmp_path / f"config{next(count)}.yaml"
        return write_config(path, tiny_config(tmp_path / "runs", **sections))

    return write


@pytest.fixture
def spsnn(capsys, monkeypatch):
    """Runs ``spsnn ARGS...`` in this process and returns its :class:`Outcome`."""
    monkeypatch.setattr(sys, "argv", ["spsnn"])
    monkeypatch.delenv("SPSNN_DEBUG", raising=False)

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        log_to_current_stderr()
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as exit_info:
            code = exit_info.code if isinstance(exit_info.code, int) else 1
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err, captured.err
        return Outcome(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained run: ``(config path, run folder, last.ckpt)``."""
    root = tmp_path_factory.mktemp("trained")
    config = write_config(root / "tiny.yaml", tiny_config(root / "runs"))
    saved = sys.argv
    sys.argv = ["spsnn"]
    log_to_current_stderr()
    try:
        main(["fit", "--config", str(config)])
    finally:
        sys.argv = saved
    (run,) = (root / "runs" / "tiny").glob("version_*")
    return config, run, run / "checkpoints" / "last.ckpt"
