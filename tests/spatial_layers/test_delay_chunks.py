"""Sequences in chunks: ``layer.forward_chunk(x, state) -> (y, state)`` carries the delay
line from one (T, B, C_in) chunk to the next, as Norse's ``LIF(x, state)`` carries its
neurons' state; the chunks' outputs are the whole sequence's (to float rounding)."""

from __future__ import annotations

import itertools

import pytest
import torch

from spatial_layers import DelayState, SpatialDelay, SpatialDelayCell, leaky_sequence

#: Chunk boundaries: a chunk of one step, chunks shorter and longer than the delay line.
SPLITS = (0, 1, 3, 10, 11, 30)


def chunked(layer: SpatialDelay, x: torch.Tensor, splits=SPLITS, time_dim=0):
    outputs, state = [], None
    for start, stop in itertools.pairwise(splits):
        y, state = layer.forward_chunk(x.narrow(time_dim, start, stop - start), state)
        outputs.append(y)
    return torch.cat(outputs, time_dim), state


@pytest.mark.parametrize("kernel", ["gauss", "linear", "round"])
@pytest.mark.parametrize("delays", ["spatial", "free", "none"])
@pytest.mark.parametrize("method", ["auto", "dense", "fft", "dft"])
def test_chunks_give_the_whole_sequence(kernel, delays, method, rng):
    torch.manual_seed(0)
    max_delay = 0 if delays == "none" else 6
    layer = SpatialDelay(
        4, 3, max_delay=max_delay, kernel=kernel, delays=delays, method=method, bias=True
    ).double()
    x = torch.rand(30, 2, 4, generator=rng, dtype=torch.float64)
    y, state = chunked(layer, x)
    torch.testing.assert_close(y, layer(x), rtol=1e-12, atol=1e-12)
    # The state is the delay line after the last step: the cell's, step by step.
    cell_state = None
    for x_t in x:
        _, cell_state = layer.cell_forward(x_t, cell_state)
    assert torch.equal(state.history, cell_state.history)


def test_chunks_and_steps_alternate_and_batch_first_works(rng):
    torch.manual_seed(0)
    layer = SpatialDelay(4, 3, max_delay=5, batch_first=True).double()
    x = torch.rand(2, 20, 4, generator=rng, dtype=torch.float64)
    first, state = layer.forward_chunk(x[:, :7])
    cell = SpatialDelayCell(layer)
    steps = []
    for t in range(7, 9):
        y_t, state = cell(x[:, t], state)
        steps.append(y_t[:, None])
    last, _ = layer.forward_chunk(x[:, 9:], state)
    torch.testing.assert_close(torch.cat([first, *steps, last], 1), layer(x), rtol=1e-12, atol=0)


def test_gradients_flow_through_the_carried_state_and_stop_at_a_detached_one(rng):
    torch.manual_seed(0)
    layer = SpatialDelay(4, 3, max_delay=6).double()
    x = torch.rand(16, 2, 4, generator=rng, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(16, 2, 3, generator=rng, dtype=torch.float64)
    params = [x, *layer.parameters()]
    whole = torch.autograd.grad((layer(x) * probe).sum(), params)
    y, _ = chunked(layer, x, (0, 5, 16))
    for got, want in zip(torch.autograd.grad((y * probe).sum(), params), whole, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    # Truncated BPTT: the second chunk's loss does not reach the first chunk's input.
    _, state = layer.forward_chunk(x[:5])
    second, _ = layer.forward_chunk(x[5:], DelayState(state.history.detach()))
    (grad,) = torch.autograd.grad(second.sum(), x)
    assert torch.equal(grad[:5], torch.zeros_like(grad[:5])) and grad[5:].abs().sum() > 0


def test_delay_line_and_neurons_carry_their_states_side_by_side(rng):
    """The composition the streaming module documents: delay state and LIF membrane."""
    torch.manual_seed(0)
    layer = SpatialDelay(4, 5, max_delay=4, kernel="linear").double()
    layer.weight.data.mul_(4.0)
    x = (torch.rand(24, 3, 4, generator=rng) < 0.4).double()
    spikes_whole, _ = leaky_sequence(layer(x))
    outputs, delay_state, membrane = [], None, None
    for start, stop in ((0, 9), (9, 10), (10, 24)):
        currents, delay_state = layer.forward_chunk(x[start:stop], delay_state)
        spikes, membranes = leaky_sequence(currents, membrane=membrane)
        outputs.append(spikes)
        membrane = membranes[-1]
    assert spikes_whole.sum() > 0
    torch.testing.assert_close(torch.cat(outputs), spikes_whole, rtol=0, atol=0)


def test_bad_states_and_step_layers_are_refused():
    layer = SpatialDelay(4, 3, max_delay=5)
    _, state = layer.forward_chunk(torch.rand(3, 2, 4))
    with pytest.raises(ValueError, match=r"\(B, C_in, taps\) = \(1, 4, 6\)"):
        layer.forward_chunk(torch.rand(3, 1, 4), state)
    with pytest.raises(ValueError, match="float64"):
        layer.forward_chunk(torch.rand(3, 2, 4), DelayState(state.history.double()))
    with pytest.raises(TypeError, match="init_hidden=True"):
        SpatialDelay(4, 3, max_delay=5, init_hidden=True).forward_chunk(torch.rand(3, 2, 4))


def test_norse_lift_names_the_cell_and_lifts_it():
    norse = pytest.importorskip("norse.torch")
    layer = SpatialDelay(4, 3, max_delay=3)
    x = torch.rand(7, 2, 4)
    with pytest.raises(ValueError, match=r"SpatialDelayCell\(layer\).*forward_chunk"):
        norse.Lift(layer)(x)
    y, state = norse.Lift(SpatialDelayCell(layer))(x)
    torch.testing.assert_close(y, layer(x), rtol=1e-5, atol=1e-6)
    assert isinstance(state, DelayState)
