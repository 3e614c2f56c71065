"""CUBA neurons (``Synaptic``, ``synaptic_step``) against snnTorch's ``Synaptic``, the
step-by-step loop, float64 finite differences, on every backend and reset."""

import pytest
import torch

from spatial_layers.neurons import Synaptic, SynapticParameters, SynapticState, synaptic_step
from tests.helpers.neurons import RESETS, device_for, drive, make_neuron, sequence_with_raw, stepped

snn = pytest.importorskip("snntorch")


def snntorch_run(currents, alpha, beta, reset, threshold=1.0):
    """snn.Synaptic over a sequence: spikes, membranes, currents."""
    neuron = snn.Synaptic(alpha=alpha, beta=beta, threshold=threshold, reset_mechanism=reset,
                          spike_grad=snn.surrogate.atan())  # fmt: skip
    syn, mem = neuron.reset_mem()
    spikes, membranes, synapses = [], [], []
    for current in currents:
        spike, syn, mem = neuron(current, syn, mem)
        spikes.append(spike)
        membranes.append(mem)
        synapses.append(syn)
    return torch.stack(spikes), torch.stack(membranes), torch.stack(synapses)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("per_neuron", [False, True], ids=["scalar", "per-neuron"])
def test_sequence_is_snntorch_synaptic_bit_for_bit(reset, dtype, per_neuron, backend):
    """Sequence form (both backends) and per-step form (init_hidden) equal snn.Synaptic."""
    device = device_for(backend)
    currents = drive((40, 3, 9), dtype=dtype)
    if per_neuron:
        alpha, beta = torch.linspace(0.3, 0.9, 9), torch.linspace(0.7, 0.97, 9)
        neuron = Synaptic(size=9, reset=reset, backend=backend)
        neuron.values.copy_(torch.stack([beta, alpha]))
    else:
        alpha, beta = 0.8, 0.9
        neuron = Synaptic(alpha, beta, reset=reset, backend=backend)
    neuron = neuron.to(device)
    spikes, membranes, synapses = snntorch_run(currents, alpha, beta, reset)
    assert 0.05 < spikes.mean() < 0.95
    got_spikes, got_membranes, state = neuron.sequence(currents.to(device))
    assert torch.equal(got_spikes.cpu(), spikes)
    assert torch.equal(got_membranes.cpu(), membranes)
    assert torch.equal(state.current.cpu(), synapses[-1])
    stepping = Synaptic(alpha, beta, size=9 if per_neuron else None, reset=reset,
                        init_hidden=True)  # fmt: skip
    if per_neuron:
        stepping.values.copy_(neuron.values.cpu())
    assert torch.equal(torch.stack([stepping(current) for current in currents]), spikes)


def test_step_function_is_snntorch_synaptic():
    currents = drive((30, 2, 5))
    spikes, membranes, _ = snntorch_run(currents, 0.7, 0.85, "subtract")
    state = SynapticState(torch.zeros(2, 5), torch.zeros(2, 5))
    params = SynapticParameters(alpha=0.7, beta=0.85)
    for t, current in enumerate(currents):
        spike, state = synaptic_step(current, state, params)
        assert torch.equal(spike, spikes[t]) and torch.equal(state.membrane, membranes[t])


@pytest.mark.parametrize(("reset", "reset_delay"), RESETS)
def test_every_form_gives_the_same_numbers(reset, reset_delay, backend):
    """Sequence (fused), cell (explicit state) and step (state inside) forms, bit for bit,
    also when a sequence continues from a state (chunks of truncated BPTT)."""
    device = device_for(backend)
    neuron = make_neuron("cuba", 6, learn=True, reset=reset, reset_delay=reset_delay,
                         backend=backend).to(device)  # fmt: skip
    currents = drive((25, 2, 6)).to(device)
    spikes, membranes, state = neuron.sequence(currents)
    ref_spikes, ref_membranes, ref_state = stepped(neuron, currents)
    assert torch.equal(spikes, ref_spikes) and torch.equal(membranes, ref_membranes)
    assert all(torch.equal(a, b) for a, b in zip(state, ref_state, strict=True))
    first, _, middle = neuron.sequence(currents[:10])
    second, _, end = neuron.sequence(currents[10:], middle)
    assert torch.equal(torch.cat([first, second]), spikes)
    assert all(torch.equal(a, b) for a, b in zip(end, state, strict=True))
    neuron.init_hidden = True
    neuron.reset_state()
    assert torch.equal(torch.stack([neuron(current) for current in currents]), spikes)


@pytest.mark.parametrize(("reset", "reset_delay"), RESETS)
def test_gradients_equal_the_step_loop(reset, reset_delay, backend):
    """Gradients of the currents, the initial state and every learnable constant (float64),
    with gradients reaching spikes, membranes and the final state."""
    device = device_for(backend)
    currents = drive((14, 2, 5), dtype=torch.float64).to(device)
    start = [drive((2, 5), seed=s, dtype=torch.float64).to(device) for s in (1, 2)]
    weights = [drive((14, 2, 5), seed=s, offset=0, dtype=torch.float64).to(device) for s in (3, 4)]
    results = []
    for fused in (True, False):
        neuron = make_neuron("cuba", 5, learn=True, reset=reset, reset_delay=reset_delay,
                             backend=backend).double().to(device)  # fmt: skip
        x = currents.clone().requires_grad_()
        state = SynapticState(*(s.clone().requires_grad_() for s in start))
        if fused:
            spikes, membranes, final = neuron.sequence(x, state)
        else:
            spikes, membranes, final = stepped(neuron, x, state)
        loss = (spikes * weights[0]).sum() + (membranes * weights[1]).sum()
        loss = loss + final.current.sum() - 0.5 * final.membrane.sum()
        results.append(torch.autograd.grad(loss, [x, *state, neuron.raw]))
    for got, want in zip(*results, strict=True):
        assert want.abs().sum() > 0
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("reset", "reset_delay"), [("subtract", True), ("zero", False)])
def test_float64_gradcheck(reset, reset_delay, backend):
    """Finite differences for the currents, both initial states and both learnable
    decays (through their reparameterisation)."""
    device = device_for(backend)
    neuron = make_neuron("cuba", 3, learn=True, reset=reset, reset_delay=reset_delay,
                         backend=backend).double().to(device)  # fmt: skip
    currents = (drive((6, 2, 3), scale=0.3, dtype=torch.float64) * 0.3).to(device)

    def outputs(x, membrane, current, raw):
        state = SynapticState(membrane, current)
        _, membranes, final = sequence_with_raw(neuron, x, state, raw)
        # Spikes are piecewise constant: the membranes carry the gradients checked here.
        return membranes, final.current

    args = [currents, *(torch.zeros(2, 3, dtype=torch.float64, device=device) + 0.1 for _ in "ab"),
            neuron.raw.detach().clone()]  # fmt: skip
    args = [a.clone().requires_grad_() for a in args]
    assert torch.autograd.gradcheck(outputs, args, eps=1e-6, atol=1e-6)


def test_learnable_decays_stay_in_range_and_finite():
    neuron = Synaptic([0.5, 0.6], 0.9, size=4, learn_alpha=True, learn_beta=True)
    optimizer = torch.optim.SGD(neuron.parameters(), lr=1e4)
    for sign in (1, -1):
        optimizer.zero_grad()
        (sign * neuron.kernel_constants(4).sum()).backward()
        optimizer.step()
        beta, alpha = neuron.kernel_constants(4).detach()
        assert torch.isfinite(neuron.raw).all()
        assert ((alpha >= 0.5) & (alpha <= 0.6)).all() and ((beta > 0) & (beta < 1)).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 1.5}, "alpha is a decay"),
        ({"alpha": [0.9, 0.5], "size": 3}, "low <= high"),
        ({"alpha": [0.5, 0.9]}, "size="),
        ({"beta": 1.0, "learn_beta": True}, "learnable decay"),
        ({"reset": "soft"}, "reset must be one of"),
        ({"threshold": 0}, "threshold"),
        ({"size": 0}, "size"),
    ],
)
def test_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Synaptic(**kwargs)


def test_the_state_is_explicit_and_checked():
    neuron = Synaptic(init_hidden=True)
    neuron(torch.ones(2, 3))
    assert neuron.state.membrane.shape == (2, 3)
    neuron.reset_state()
    assert neuron.state is None
    with pytest.raises(ValueError, match=r"state\.membrane must have the shape"):
        neuron.cell_forward(torch.ones(2, 3), SynapticState(torch.zeros(3), torch.zeros(2, 3)))
