"""Cached constants under CUDA-graph capture and torch.compile: a graph keeps the
constants it read, nothing is cached while capturing, a new dtype or shape gets new ones.

Without a GPU the capture is a stand-in that runs the warm-up passes and returns the
module (as in tests/lightning_modules/test_cuda_graphs.py); the real capture runs
in the GPU tests there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spatial_layers import constants
from spatial_layers.functional import _dft_matrices, plan_delayed_linear
from spatial_layers.networks import SpatialSNN
from spatial_layers.networks.cuda_graphs import GraphedNetwork

STEPS, CHANNELS, MAX_DELAY = 100, 48, 25


def stand_in_capture(module, sample_args, num_warmup_iters):
    for _ in range(num_warmup_iters + 1):
        module(*sample_args)
    return module


def dft_network() -> SpatialSNN:
    torch.manual_seed(0)
    return SpatialSNN(CHANNELS, 3, [CHANNELS], max_delay=MAX_DELAY, init_gain=3.0)


def spikes(dtype=torch.float32, steps=STEPS) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return (torch.rand(steps, 2, CHANNELS, generator=generator) < 0.3).to(dtype)


def test_a_captured_graph_keeps_the_constants_it_read():
    assert plan_delayed_linear(STEPS, 2, CHANNELS, CHANNELS, MAX_DELAY + 1).method == "dft"
    constants.clear()
    net = dft_network()
    graphed = GraphedNetwork(net, make_graphed=stand_in_capture)
    x = spikes()
    output = graphed(x)
    plan = plan_delayed_linear(STEPS, 2, CHANNELS, CHANNELS, MAX_DELAY + 1)
    read = _dft_matrices(STEPS, MAX_DELAY + 1, plan.fft_size, x)
    held = {id(t) for value in graphed._constants for t in value}
    assert all(id(t) in held for t in read)
    constants.clear()  # dropped from the cache: still alive with the graph
    assert all(id(t) in {id(t) for value in graphed._constants for t in value} for t in read)
    torch.testing.assert_close(output.membrane, net.run(x).membrane)


def test_nothing_is_cached_while_a_graph_is_captured(monkeypatch):
    constants.clear()
    monkeypatch.setattr(constants, "_capturing", lambda like: True)
    net = dft_network()
    eager = net(spikes())
    assert not constants._ENTRIES
    monkeypatch.undo()
    torch.testing.assert_close(net(spikes()), eager)  # cached now, same numbers
    assert constants._ENTRIES


def test_another_dtype_is_captured_again_with_its_own_constants():
    constants.clear()
    net = dft_network()
    graphed = GraphedNetwork(net, make_graphed=stand_in_capture)
    graphed(spikes())
    net.double()
    x = spikes(torch.float64)
    output = graphed(x)
    assert graphed.captures == 2
    assert {t.dtype for value in graphed._constants for t in value} >= {torch.float64}
    torch.testing.assert_close(output.membrane, net.run(x).membrane, rtol=1e-12, atol=1e-12)


def test_compiled_step_with_cached_constants_equals_the_eager_one():
    """Eager calls fill the cache; the compiled step builds its constants in the graph
    (never reading the cache) and gives the same numbers, without recompiling when the
    cache changes."""
    import torch._dynamo

    net = dft_network()
    x, labels = spikes(), torch.tensor([0, 2])

    def loss_of(x):
        return F.cross_entropy(net(x).mean(0), labels)

    torch._dynamo.reset()
    compiled = torch.compile(loss_of, fullgraph=True, backend="aot_eager")
    with torch._dynamo.config.patch(error_on_recompile=True):
        for clear in (False, True, False):
            if clear:
                constants.clear()
            torch.testing.assert_close(compiled(x), loss_of(x))
