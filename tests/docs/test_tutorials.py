"""The tutorials run, at the small size ``SPSNN_TUTORIAL_SMALL=1`` selects.

Each tutorial (``docs/tutorials/*.py``, jupytext percent format) runs as a script in
this process (torch is imported once for all of them), in a scratch directory, with
matplotlib drawing off screen. The site renders them as notebooks without running
them, so this is where they are executed.
"""

from __future__ import annotations

import runpy

import jupytext
import matplotlib
import pytest
import torch

from tests.helpers.docs import DOCS

TUTORIALS = sorted((DOCS / "tutorials").glob("*.py"))


@pytest.fixture
def small(tmp_path, monkeypatch):
    """Small size, a scratch directory, no windows; torch's global flags restored after."""
    monkeypatch.setenv("SPSNN_TUTORIAL_SMALL", "1")
    monkeypatch.chdir(tmp_path)
    matplotlib.use("Agg")
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
    torch.use_deterministic_algorithms(deterministic)


def test_there_are_tutorials():
    assert len(TUTORIALS) >= 2


@pytest.mark.parametrize("path", TUTORIALS, ids=[path.stem for path in TUTORIALS])
def test_tutorial_runs(path, small):
    runpy.run_path(str(path), run_name="__main__")


@pytest.mark.parametrize("path", TUTORIALS, ids=[path.stem for path in TUTORIALS])
def test_tutorial_is_a_notebook(path):
    """jupytext reads it as a notebook of markdown and code cells, starting with a title."""
    notebook = jupytext.read(path)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert "markdown" in kinds and "code" in kinds
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[0].source.startswith("# ")
    assert notebook.metadata["jupytext"]["text_representation"]["format_name"] == "percent"
