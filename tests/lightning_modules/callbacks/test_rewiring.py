"""What the rewiring callbacks (DEEP R, RigL) share: one set of layers at one sparsity,
exact counts through a fit, the order of their updates, and identical decisions on every
DDP rank (2 CPU processes, gloo)."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from lightning_modules.callbacks import DeepR, RigL
from tests.helpers.probes import differing_keys
from tests.helpers.rewiring import Probe, TinyClassifier, loader, trainer
from tests.helpers.training import REPO

# ----------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    "pair",
    [
        (DeepR(0.9), RigL(0.8)),
        (DeepR(0.9), RigL(0.9, distribution="erk")),
        (DeepR(0.9, rescale=True), RigL(0.9)),
        (DeepR(0.9, layers=["net.hidden"]), RigL(0.9)),
    ],
    ids=["sparsity", "distribution", "rescale", "layers"],
)
def test_deepr_and_rigl_must_agree_on_sparsity(pair):
    with pytest.raises(ValueError, match="same layers at the same sparsity"):
        trainer(list(pair), max_steps=1).fit(TinyClassifier(), loader(16))


def test_one_callback_of_each_kind_per_trainer():
    first, second = RigL(0.9, seed=1), RigL(0.9, seed=2)  # (Lightning refuses this pair itself)
    with pytest.raises(ValueError, match="one RigL callback per trainer"):
        first.setup(SimpleNamespace(callbacks=[first, second]), TinyClassifier(), "fit")


# ----------------------------------------------------------------------------- whole fits


def erk_pair():
    return [RigL(0.8, delta_t=4, distribution="erk"), DeepR(0.8, l1=1e-3, distribution="erk")]


@pytest.mark.parametrize(
    ("make_callbacks", "distribution"),
    [
        pytest.param(lambda: [DeepR(0.8, l1=1e-3, noise_temperature=1e-4)], "uniform", id="deepr"),
        pytest.param(lambda: [RigL(0.8, alpha=0.5, delta_t=2)], "uniform", id="rigl"),
        pytest.param(
            lambda: [RigL(0.8, delta_t=4), DeepR(0.8, l1=1e-3)], "uniform", id="deepr+rigl"
        ),
        pytest.param(erk_pair, "erk", id="deepr+rigl-erk"),
    ],
)
def test_masks_hold_exact_sparsity_through_a_fit(make_callbacks, distribution):
    torch.manual_seed(0)
    probe = Probe(0.8, distribution=distribution)
    model = TinyClassifier()
    fit = trainer(
        [*make_callbacks(), probe], max_steps=24, limit_val_batches=1, val_check_interval=3
    )
    fit.fit(model, loader(), loader(16))
    assert probe.checks >= 2 * 24
    assert probe.changes, "rewiring never changed a mask"
    for _, _, dropped, grown in probe.changes:
        assert dropped == grown


def test_deepr_removes_before_rigl_updates_whatever_the_list_order():
    states = []
    for rigl_first in (True, False):
        torch.manual_seed(0)
        model = TinyClassifier()
        pair = [RigL(0.8, delta_t=4), DeepR(0.8, l1=1e-3, noise_temperature=1e-4)]
        callbacks = pair if rigl_first else pair[::-1]
        trainer(callbacks, max_steps=24).fit(model, loader())
        states.append(model.state_dict())
        assert [type(m).__name__ for m in callbacks[0].rewiring.members] == ["DeepR", "RigL"]
        assert callbacks[0].rewiring is callbacks[1].rewiring
    assert not differing_keys(states[1], states[0])


# ----------------------------------------------------------------------------- DDP


@pytest.mark.slow
def test_ranks_make_identical_rewiring_decisions(tmp_path):
    """Dale + DeepR (removal, noise) + RigL (regrowth from all-reduced dense gradients)."""
    mode = "deepr+rigl"
    # Run as a module from the repository root, so that `tests` and the packages import
    # (Lightning's DDP launcher starts rank 1 with the same `-m` command, in the same folder).
    env = dict(os.environ)
    env.pop("LOCAL_RANK", None)
    result = subprocess.run(
        [sys.executable, "-m", "tests.helpers.ddp_rewiring_worker", str(tmp_path), mode],
        cwd=REPO,
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
