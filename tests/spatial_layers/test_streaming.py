"""The streaming form of a delayed layer: ``step`` and ``init_hidden`` calls equal the sequence
call, ``reset_state`` / ``detach_state`` (truncated BPTT), the Norse-style
``SpatialDelayCell``, and ``spatial_layers.reset`` / ``detach`` of a whole network
(snnTorch and Norse networks: test_interop)."""

import pytest
import torch
from torch import nn

import spatial_layers
from spatial_layers import (
    DelayState,
    SpatialDelay,
    SpatialDelayCell,
    leaky_sequence,
    leaky_step,
)
from tests.helpers.delay import KERNELS, MODES, twin


def nested_network() -> nn.Module:
    """Per-step layers at two depths, with a module of another kind between them."""
    torch.manual_seed(0)
    inner = nn.Sequential(SpatialDelay(3, 4, max_delay=3, init_hidden=True), nn.Tanh())
    return nn.Sequential(inner, SpatialDelay(4, 2, max_delay=5, init_hidden=True))


def run(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.stack([net(x_t) for x_t in x])


def test_reset_starts_every_layer_on_a_new_sequence(rng):
    net = nested_network()
    first, second = torch.rand(2, 8, 2, 3, generator=rng)
    with torch.no_grad():
        fresh = run(net, second)
        run(net, first)
        carried = run(net, second)
        spatial_layers.reset(net)
        again = run(net, second)
    assert not torch.allclose(carried, fresh)  # the first sequence was still in flight
    assert torch.equal(again, fresh)


def test_detach_keeps_values_and_cuts_every_layer_s_gradient(rng):
    net = nested_network()
    x = torch.rand(10, 2, 3, generator=rng, requires_grad=True)
    whole = run(net, x)
    spatial_layers.reset(net)
    head = run(net, x[:6])
    head.sum().backward()
    spatial_layers.detach(net)
    tail = run(net, x[6:])
    assert torch.equal(torch.cat([head, tail]), whole)
    x.grad = None
    tail.sum().backward()
    assert (x.grad[:6] == 0).all() and (x.grad[6:] != 0).any()  # nothing before the cut


# --- per-step calls of one layer ------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_step_equals_forward(mode, kernel, device, rng):
    layer = SpatialDelay(5, 4, max_delay=6, kernel=kernel, delays=mode, bias=True, device=device)
    x = (torch.rand(20, 3, 5, generator=rng) < 0.3).float().to(device)
    with torch.no_grad():
        y = layer(x)
        stepped = torch.stack([layer.step(x_t) for x_t in x])
    torch.testing.assert_close(stepped, y, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_spikes_after_lif_equal_exactly_between_modes(mode, device, rng):
    torch.manual_seed(0)
    layer = SpatialDelay(6, 8, max_delay=5, kernel="gauss", delays=mode, device=device)
    with torch.no_grad():
        layer.weight.mul_(4.0)  # enough drive for plenty of spikes
    x = (torch.rand(40, 4, 6, generator=rng) < 0.3).float().to(device)
    with torch.no_grad():
        spikes_seq, _ = leaky_sequence(layer(x))
        membrane = torch.zeros(4, 8, device=device)
        spikes_step = []
        for x_t in x:
            spike, membrane = leaky_step(layer.step(x_t), membrane)
            spikes_step.append(spike)
    spikes_step = torch.stack(spikes_step)
    assert spikes_seq.sum() > 20
    assert torch.equal(spikes_step, spikes_seq)


def test_step_equals_forward_at_training_size(rng):
    # SHD-like shapes (140 binned inputs, 25 steps of delay), where the sequence
    # call may take a faster algorithm than small shapes do; the contract holds.
    torch.manual_seed(0)
    layer = SpatialDelay(140, 64, max_delay=25, kernel="gauss")
    with torch.no_grad():
        layer.weight.mul_(3.0)
    x = (torch.rand(80, 16, 140, generator=rng) < 0.1).float()
    with torch.no_grad():
        y = layer(x)
        stepped = torch.stack([layer.step(x_t) for x_t in x])
        torch.testing.assert_close(stepped, y, rtol=0, atol=1e-6)
        spikes, _ = leaky_sequence(y)
        spikes_step, _ = leaky_sequence(stepped)
    assert spikes.sum() > 1000
    assert torch.equal(spikes_step, spikes)


def test_reset_state_starts_a_fresh_sequence(rng):
    layer = SpatialDelay(3, 2, max_delay=4, kernel="linear")
    first = torch.rand(6, 2, 3, generator=rng)
    second = torch.rand(6, 2, 3, generator=rng)
    with torch.no_grad():
        for x_t in first:
            layer.step(x_t)
        carried = torch.stack([layer.step(x_t) for x_t in second])
        layer.reset_state()
        fresh = torch.stack([layer.step(x_t) for x_t in second])
        torch.testing.assert_close(fresh, layer(second), rtol=0, atol=1e-6)
        # Without the reset, the first sequence's spikes were still in flight.
        assert not torch.allclose(carried, fresh)


def test_step_refuses_a_new_batch_size_without_reset(rng):
    layer = SpatialDelay(3, 2, max_delay=4)
    layer.step(torch.rand(2, 3, generator=rng))
    with pytest.raises(ValueError, match="reset_state"):
        layer.step(torch.rand(5, 3, generator=rng))
    layer.reset_state()
    assert layer.step(torch.rand(5, 3, generator=rng)).shape == (5, 2)


@pytest.mark.parametrize("mode", MODES)
def test_cell_with_explicit_state_equals_forward(mode, device, rng):
    layer = SpatialDelay(4, 3, max_delay=5, kernel="linear", delays=mode, device=device)
    cell = SpatialDelayCell(layer)
    assert cell.layer is layer
    assert [p for p in cell.parameters()] == [p for p in layer.parameters()]
    x = torch.rand(10, 2, 4, generator=rng).to(device)
    state = None
    outputs = []
    with torch.no_grad():
        for x_t in x:
            y_t, state = cell(x_t, state)
            outputs.append(y_t)
        assert isinstance(state, DelayState)
        torch.testing.assert_close(torch.stack(outputs), layer(x), rtol=0, atol=1e-6)
    assert layer._stream is None  # the cell leaves the layer's own stream alone


def test_cell_rejects_a_foreign_state(rng):
    layer = SpatialDelay(4, 3, max_delay=5)
    cell = SpatialDelayCell(layer)
    x_t = torch.rand(2, 4, generator=rng)
    with pytest.raises(ValueError, match="history must have shape"):
        cell(x_t, DelayState(torch.zeros(2, 4, 3)))  # 3 taps instead of 6
    with pytest.raises(ValueError, match="history must have shape"):
        cell(x_t, DelayState(torch.zeros(2, 5, 6)))  # 5 inputs instead of 4
    with pytest.raises(ValueError, match="history"):
        cell(x_t, DelayState(torch.zeros(2, 4, 6, dtype=torch.float64)))


def test_step_backpropagates_through_time(rng):
    layer = SpatialDelay(3, 2, max_delay=4, kernel="gauss")
    x = torch.rand(8, 2, 3, generator=rng)
    layer(x).square().sum().backward()
    grads_seq = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    torch.stack([layer.step(x_t) for x_t in x]).square().sum().backward()
    for p, expected in zip(layer.parameters(), grads_seq, strict=True):
        torch.testing.assert_close(p.grad, expected, rtol=1e-5, atol=1e-6)


def test_streaming_keeps_the_whole_history(rng):
    layer = SpatialDelay(3, 2, max_delay=7, kernel="linear", delays="free")
    with torch.no_grad():
        layer.free_delays.fill_(6.0)
    x = torch.rand(10, 1, 3, generator=rng)
    stepped = torch.stack([layer.step(x_t) for x_t in x])
    assert layer._stream.history.shape[-1] == 8
    torch.testing.assert_close(stepped, layer(x), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(stepped[6:], layer(x)[6:], rtol=1e-6, atol=1e-6)
    assert stepped[:6].abs().max() == 0 and stepped[6:].abs().min() > 0


# --- snnTorch style (init_hidden) and truncated BPTT ----------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_init_hidden_call_per_step_equals_sequence_forward(mode, kernel, rng):
    layer = SpatialDelay(5, 4, max_delay=6, kernel=kernel, delays=mode, bias=True)
    stepped = twin(layer, init_hidden=True)
    x = (torch.rand(20, 3, 5, generator=rng) < 0.3).float()
    with torch.no_grad():
        y = torch.stack([stepped(x_t) for x_t in x])  # one (B, C_in) step per call
    torch.testing.assert_close(y, layer(x).detach(), rtol=0, atol=1e-6)


def test_init_hidden_state_stays_out_of_the_state_dict(rng):
    layer = SpatialDelay(5, 4, max_delay=6, init_hidden=True)
    keys = set(layer.state_dict())
    layer(torch.rand(3, 5, generator=rng))
    assert layer._stream is not None
    assert set(layer.state_dict()) == keys
    twin(layer).load_state_dict(layer.state_dict())  # loads into a sequence layer unchanged


def test_detach_state_keeps_the_history_and_cuts_the_gradient(rng):
    """Truncated BPTT: the second chunk's gradient is the one of a run whose first
    chunk carried no graph (an independent reference: the same steps under no_grad)."""
    torch.manual_seed(0)
    upstream = torch.nn.Linear(3, 3)  # the history then holds a graph, as after snn.Leaky
    layer = SpatialDelay(3, 2, max_delay=4, kernel="gauss", init_hidden=True)
    first, second = torch.rand(2, 5, 2, 3, generator=rng)

    def chunk(x):
        return torch.stack([layer(upstream(x_t)) for x_t in x]).square().sum()

    chunk(first).backward()
    layer.detach_state()
    layer.zero_grad()
    upstream.zero_grad()
    chunk(second).backward()
    truncated = [p.grad.clone() for p in (*layer.parameters(), *upstream.parameters())]

    layer.reset_state()
    layer.zero_grad()
    upstream.zero_grad()
    with torch.no_grad():
        chunk(first)
    chunk(second).backward()
    reference = [p.grad for p in (*layer.parameters(), *upstream.parameters())]
    for got, want in zip(truncated, reference, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


def test_a_step_on_a_freed_history_names_detach_state(rng):
    upstream = torch.nn.Linear(3, 3)
    layer = SpatialDelay(3, 2, max_delay=4, init_hidden=True)
    x = torch.rand(4, 2, 3, generator=rng)
    torch.stack([layer(upstream(x_t)) for x_t in x]).sum().backward()
    with pytest.raises(RuntimeError, match=r"detach_state\(\).*reset_state\(\).*spatial_layers"):
        layer(upstream(x[0]))
    layer.detach_state()
    layer(upstream(x[0])).sum().backward()  # goes on, truncated
    layer.reset_state()
    assert layer(upstream(x[0])).shape == (2, 2)


def test_a_history_without_graph_goes_on_after_backward(rng):
    layer = SpatialDelay(3, 2, max_delay=4, init_hidden=True)  # fed data: no graph to free
    x = torch.rand(4, 2, 3, generator=rng)
    torch.stack([layer(x_t) for x_t in x]).sum().backward()
    layer(x[0]).sum().backward()
