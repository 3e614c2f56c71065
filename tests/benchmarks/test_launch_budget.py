"""The launch budget of a training step: the SHD-shape step with the Triton LIF backend
dispatches at most 300 ops (forward + loss, backward, optimizer step).

Counted as ``benchmarks/train_step.py`` counts them (``benchmarks/op_count.py``): every
ATen op but views, one per Triton kernel launch (the Triton interpreter's own host copies
on a machine without a GPU are not ops a GPU would run). Before the constant caches, the
fused kernel and distance nodes and the fused Adam, the same step dispatched 619.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from lightning_modules.classifier import adam_implementation
from spatial_layers.networks import SpatialSNN
from tests.helpers.benchmarks import load

op_count = load("op_count")

#: Ops one SHD-shape training step may dispatch (issue 21).
BUDGET = 300
#: The SHD shape as DCLS-delays trains it (batch 8, as the budget was measured).
SHD = dict(steps=100, batch=8, inputs=140, hidden=256, classes=20, max_delay=24)

TRITON = importlib.util.find_spec("triton") is not None


def shd_step(backend: str, batch: int):
    torch.manual_seed(0)
    net = SpatialSNN(
        SHD["inputs"],
        SHD["classes"],
        [SHD["hidden"], SHD["hidden"]],
        max_delay=SHD["max_delay"],
        kernel="gauss",
        batch_norm=True,
        dropout=0.4,
        backend=backend,
    )
    params = list(net.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-3, **adam_implementation(params))
    x = (torch.rand(SHD["steps"], batch, SHD["inputs"]) < 0.05).float()
    labels = torch.randint(SHD["classes"], (batch,))
    return net, optimizer, lambda: F.cross_entropy(net(x).mean(0), labels)


@pytest.mark.skipif(not TRITON, reason="needs triton (CUDA or its interpreter)")
def test_the_shd_step_with_the_triton_backend_stays_within_the_budget():
    # Warm-up on the torch backend (Triton's interpreter is slow; the delay layers, which
    # the backend does not touch, are the same): Adam's state and the constant caches are
    # made by the first step, not every step.
    net, optimizer, loss = shd_step("torch", batch=SHD["batch"])
    loss().backward()
    optimizer.step()
    batch_net, _, batch_loss = shd_step("triton", batch=SHD["batch"])
    batch_net.load_state_dict(net.state_dict())
    for ours, theirs in zip(batch_net.parameters(), net.parameters(), strict=True):
        optimizer.state[ours] = optimizer.state.pop(theirs)
    optimizer.param_groups[0]["params"] = list(batch_net.parameters())

    phases = op_count.count_train_step(batch_loss, optimizer)
    total = sum(sum(counts.values()) for counts in phases.values())
    assert total <= BUDGET, {phase: counts.most_common(8) for phase, counts in phases.items()}
    # Adam: one fused kernel and the step counts, no host sync.
    assert sum(phases["optimizer"].values()) <= 4
    assert "_local_scalar_dense" not in phases["optimizer"]
    # Nothing made per forward that depends on shapes only.
    forward = phases["forward"]
    assert not {"arange", "sin", "cos"} & set(forward), forward


def test_the_counter_counts_ops_not_views():
    x = torch.ones(4, 3)
    with op_count.OpCounter() as counter:
        y = x.t().reshape(12) * 2  # a view, a copy (reshape of a transpose), a mul
        y.view(3, 4).sum()
    assert dict(counter.by_op) == {
        "clone.default": 1,
        "_unsafe_view.default": 1,
        "mul.Tensor": 1,
        "sum.default": 1,
    }
