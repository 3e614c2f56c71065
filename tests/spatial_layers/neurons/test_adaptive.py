"""Adaptive LIF neurons (SE-adLIF: ``AdaptiveLeaky``, ``adaptive_step``) against a plain
step-by-step reference written from the paper's equations, the step loop, and float64
finite differences, on every backend."""

import math

import pytest
import torch

from spatial_layers.neurons import AdaptiveLeaky, AdaptiveParameters, AdaptiveState, adaptive_step
from spatial_layers.neurons.adaptive import SE_ADLIF_ADAPTATION_DECAY, SE_ADLIF_BETA
from tests.helpers.neurons import device_for, drive, make_neuron, sequence_with_raw, stepped


def se_adlif_reference(currents, beta, decay, a, b, q, threshold=1.0):
    """SE-adLIF (Baronig et al. 2024, symplectic Euler) as the paper writes it, in float64:
    u_t = a_u u + (1 - a_u)(I_t - w); z = H(u_t - theta); u_t <- u_t (1 - z);
    w_t = a_w w + (1 - a_w)(a u_t + b z) q."""
    u = torch.zeros_like(currents[0])
    w = torch.zeros_like(u)
    spikes, membranes = [], []
    for current in currents:
        u = beta * u + (1 - beta) * (current - w)
        membranes.append(u)
        z = (u - threshold > 0).to(u.dtype)
        u = u * (1 - z)
        w = decay * w + (1 - decay) * (a * u + b * z) * q
        spikes.append(z)
    return torch.stack(spikes), torch.stack(membranes)


def test_the_paper_s_equations(backend):
    """Spikes equal the reference (float64; membranes to rounding: the fused op computes
    (1 - rho) q a once per neuron), with the paper's ranges."""
    device = device_for(backend)
    torch.manual_seed(0)
    neuron = AdaptiveLeaky(16, backend=backend).double().to(device)
    beta, decay, a, b = neuron.constant_values()
    currents = drive((80, 4, 16), scale=6.0, offset=4.0, dtype=torch.float64)
    spikes, membranes = neuron.forward_with_membrane(currents.to(device))
    ref_spikes, ref_membranes = se_adlif_reference(
        currents, *(c.cpu() for c in (beta, decay, a, b)), q=120.0
    )
    assert 0.02 < ref_spikes.mean() < 0.5
    assert torch.equal(spikes.cpu(), ref_spikes)
    torch.testing.assert_close(membranes.cpu(), ref_membranes, rtol=1e-12, atol=1e-12)


def test_default_constants_are_in_the_paper_s_ranges():
    torch.manual_seed(0)
    neuron = AdaptiveLeaky(1000)
    beta, decay, a, b = neuron.constant_values()
    tau_u, tau_w = -1 / torch.log(beta.double()), -1 / torch.log(decay.double())
    assert tau_u.min() >= 5 - 1e-4 and tau_u.max() <= 25 + 1e-4 and tau_u.std() > 4
    assert tau_w.min() >= 60 - 1e-2 and tau_w.max() <= 300 + 1e-2
    assert a.min() >= 0 and a.max() <= 1 and b.min() >= 0 and b.max() <= 2
    assert neuron.scale == 120 and neuron.reset == "zero" and not neuron.reset_delay
    assert pytest.approx((math.exp(-1 / 5), math.exp(-1 / 25))) == SE_ADLIF_BETA
    assert pytest.approx((math.exp(-1 / 60), math.exp(-1 / 300))) == SE_ADLIF_ADAPTATION_DECAY


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("learn", [False, True])
def test_sequence_step_and_cell_forms_are_bit_equal(dtype, learn, backend):
    device = device_for(backend)
    neuron = make_neuron("adlif", 7, learn=learn, backend=backend).to(dtype).to(device)
    currents = drive((40, 3, 7), scale=3.0, offset=1.0, dtype=dtype).to(device)
    spikes, membranes, state = neuron.sequence(currents)
    ref_spikes, ref_membranes, ref_state = stepped(neuron, currents)
    assert 0.02 < ref_spikes.mean() < 0.6
    assert torch.equal(spikes, ref_spikes) and torch.equal(membranes, ref_membranes)
    assert all(torch.equal(x, y) for x, y in zip(state, ref_state, strict=True))
    first, _, middle = neuron.sequence(currents[:15])
    second, _, _ = neuron.sequence(currents[15:], middle)
    assert torch.equal(torch.cat([first, second]), spikes)
    neuron.init_hidden = True
    assert torch.equal(torch.stack([neuron(current) for current in currents]), spikes)


def test_step_function_with_numbers_is_the_module():
    neuron = AdaptiveLeaky(3, 0.8, 0.95, 0.3, 0.7, scale=10.0)
    params = AdaptiveParameters(0.8, 0.95, 0.3, 0.7, scale=10.0)
    currents = drive((20, 2, 3), scale=3.0, offset=1.0)
    state = AdaptiveState(torch.zeros(2, 3), torch.zeros(2, 3))
    spikes = []
    for current in currents:
        spike, state = adaptive_step(current, state, params)
        spikes.append(spike)
    assert torch.equal(torch.stack(spikes), neuron(currents))


def test_gradients_equal_the_step_loop(backend):
    """Currents, both initial states (u, w) and all four learnable constants, with
    gradients reaching spikes, membranes and the final state (float64)."""
    device = device_for(backend)
    currents = drive((16, 2, 5), scale=3.0, offset=1.0, dtype=torch.float64).to(device)
    start = [drive((2, 5), seed=s, dtype=torch.float64).to(device) for s in (1, 2)]
    weights = [drive((16, 2, 5), seed=s, offset=0, dtype=torch.float64).to(device) for s in (3, 4)]
    results = []
    for fused in (True, False):
        neuron = make_neuron("adlif", 5, learn=True, backend=backend).double().to(device)
        x = currents.clone().requires_grad_()
        state = AdaptiveState(*(s.clone().requires_grad_() for s in start))
        if fused:
            spikes, membranes, final = neuron.sequence(x, state)
        else:
            spikes, membranes, final = stepped(neuron, x, state)
        loss = (spikes * weights[0]).sum() + (membranes * weights[1]).sum()
        loss = loss + final.adaptation.sum() - 0.5 * final.membrane.sum()
        results.append(torch.autograd.grad(loss, [x, *state, neuron.raw]))
    for got, want in zip(*results, strict=True):
        assert want.abs().sum() > 0
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_float64_gradcheck(backend):
    """Finite differences for the currents, both initial states and every learnable
    constant (beta, adaptation decay, a, b through their reparameterisation).

    The spike reaches the adaptation through b S_t with its surrogate gradient (as in
    SE-adLIF), which finite differences of a step function cannot see: a surrogate slope
    of 1e7 makes that term vanish below the membrane's threshold, where the inputs keep it.
    """
    device = device_for(backend)
    torch.manual_seed(3)
    neuron = AdaptiveLeaky(3, learn_beta=True, learn_adaptation=True, scale=3.0,
                           surrogate_alpha=1e7, backend=backend).double().to(device)  # fmt: skip
    currents = drive((7, 2, 3), scale=0.3, offset=0.2, dtype=torch.float64).to(device)

    def outputs(x, membrane, adaptation, raw):
        state = AdaptiveState(membrane, adaptation)
        _, membranes, final = sequence_with_raw(neuron, x, state, raw)
        return membranes, final.adaptation

    start = torch.full((2, 3), 0.1, dtype=torch.float64, device=device)
    args = [currents, start, start * 2, neuron.raw.detach().clone()]
    args = [a.clone().requires_grad_() for a in args]
    assert torch.autograd.gradcheck(outputs, args, eps=1e-6, atol=1e-6)


def test_learnable_constants_stay_in_their_ranges():
    neuron = AdaptiveLeaky(4, learn_beta=True, learn_adaptation=True)
    optimizer = torch.optim.SGD(neuron.parameters(), lr=1e5)
    for sign in (1, -1):
        optimizer.zero_grad()
        (sign * neuron.constant_values().sum()).backward()
        optimizer.step()
        beta, decay, a, b = neuron.constant_values().detach()
        assert torch.isfinite(neuron.raw).all()
        assert ((beta >= SE_ADLIF_BETA[0]) & (beta <= SE_ADLIF_BETA[1])).all()
        assert ((decay > 0) & (decay < 1)).all()
        assert ((a >= 0) & (a <= 1) & (b >= 0) & (b <= 2)).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": [0.9, 1.0]}, "beta is a decay range"),
        ({"coupling": 1.5, "learn_adaptation": True}, "learnable coupling stays in"),
        ({"scale": 0}, "scale"),
        ({"jump": [2.0, 1.0]}, "low <= high"),
    ],
)
def test_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdaptiveLeaky(4, **kwargs)
