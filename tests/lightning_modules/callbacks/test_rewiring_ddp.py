"""Under DDP (2 CPU processes, gloo) every rank makes the same rewiring decisions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_rewiring_worker.py")
REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_ranks_make_identical_rewiring_decisions(tmp_path):
    """Dale + DeepR (removal, noise) + RigL (regrowth from all-reduced dense gradients)."""
    mode = "deepr+rigl"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    env.pop("LOCAL_RANK", None)
    result = subprocess.run(
        [sys.executable, str(WORKER), str(tmp_path), mode],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    removed = rank0.pop("removed")
    assert removed == rank1.pop("removed")
    changes = rank0.pop("rigl_changes")
    assert changes == rank1.pop("rigl_changes")
    if mode == "rigl":
        assert changes > 0, "RigL never rewired"
    if mode == "deepr+rigl":
        assert sum(removed.values()) > 0, "DEEP R never rewired"
    for name, state in rank0.items():
        for key, value in state.items():
            assert torch.equal(value, rank1[name][key]), f"{name}.{key} differs between ranks"
        assert int(state["mask"].sum()) == round(0.2 * state["mask"].numel())
