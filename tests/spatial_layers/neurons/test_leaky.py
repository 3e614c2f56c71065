"""The package's LIF against snnTorch's snn.Leaky (reset by subtraction, arctan surrogate)."""

import math

import pytest
import torch

from spatial_layers import Leaky, LeakyParameters, leaky_sequence, leaky_step

snn = pytest.importorskip("snntorch")
surrogate = pytest.importorskip("snntorch.surrogate")

PARAMS = [
    LeakyParameters(beta=0.9, threshold=1.0, alpha=2.0),
    LeakyParameters(beta=0.75, threshold=0.5, alpha=5.0),
    LeakyParameters(beta=1.0, threshold=1.3, alpha=1.0),
]


def snntorch_loop(currents: torch.Tensor, params: LeakyParameters):
    """snn.Leaky stepped over time, as snnTorch tutorials do."""
    neuron = snn.Leaky(
        beta=params.beta,
        threshold=params.threshold,
        spike_grad=surrogate.atan(alpha=params.alpha),
        reset_mechanism="subtract",
    )
    membrane = neuron.reset_mem()
    spikes, membranes = [], []
    for current in currents:
        spike, membrane = neuron(current, membrane)
        spikes.append(spike)
        membranes.append(membrane)
    return torch.stack(spikes), torch.stack(membranes)


def drive(rng: torch.Generator, shape=(50, 4, 6)) -> torch.Tensor:
    """Currents strong enough for plenty of spikes, with negative ones too."""
    return torch.randn(*shape, generator=rng) * 0.6 + 0.25


@pytest.mark.parametrize("params", PARAMS)
def test_matches_snntorch_forward(params, rng):
    currents = drive(rng)
    spikes, membranes = leaky_sequence(currents, params)
    ref_spikes, ref_membranes = snntorch_loop(currents, params)
    assert ref_spikes.sum() > 50 and (ref_spikes == 0).sum() > 50
    assert torch.equal(spikes, ref_spikes)
    assert torch.equal(membranes, ref_membranes)


@pytest.mark.parametrize("params", PARAMS)
def test_matches_snntorch_input_gradients(params, rng):
    base = drive(rng, shape=(30, 3, 5))
    probe_spikes = torch.randn(30, 3, 5, generator=rng)
    probe_membrane = torch.randn(30, 3, 5, generator=rng)

    def grad_of(run):
        currents = base.clone().requires_grad_()
        spikes, membranes = run(currents, params)
        ((spikes * probe_spikes).sum() + (membranes * probe_membrane).sum()).backward()
        return currents.grad

    ours, reference = grad_of(leaky_sequence), grad_of(snntorch_loop)
    assert reference.abs().sum() > 0
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


def test_module_matches_snntorch(rng):
    currents = drive(rng)
    neuron = Leaky(beta=0.8, threshold=0.7, alpha=3.0)
    spikes, membranes = neuron.forward_with_membrane(currents)
    ref_spikes, ref_membranes = snntorch_loop(currents, LeakyParameters(0.8, 0.7, 3.0))
    assert torch.equal(neuron(currents), ref_spikes)
    assert torch.equal(spikes, ref_spikes)
    assert torch.equal(membranes, ref_membranes)


def test_module_is_stateless_between_calls(rng):
    currents = drive(rng)
    neuron = Leaky()
    first = neuron(currents)
    assert torch.equal(neuron(currents), first)


def test_step_by_hand():
    params = LeakyParameters(beta=0.5, threshold=1.0, alpha=2.0)
    membrane = torch.tensor([0.0])
    trace = []
    for current in (0.8, 0.7, 0.0, 0.0):
        spike, membrane = leaky_step(torch.tensor([current]), membrane, params)
        trace.append((spike.item(), membrane.item()))
    # U: 0.8 -> 0.4 + 0.7 = 1.1 (spike) -> 0.55 - 1.0 (reset one step later) -> -0.225.
    expected = [(0.0, 0.8), (1.0, 1.1), (0.0, 0.55 - 1.0), (0.0, -0.225)]
    for (spike, u), (spike_ref, u_ref) in zip(trace, expected, strict=True):
        assert spike == spike_ref
        assert math.isclose(u, u_ref, rel_tol=1e-6, abs_tol=1e-7)


def test_initial_membrane(rng):
    currents = drive(rng, shape=(5, 2, 3))
    start = torch.full((2, 3), 0.95)
    spikes, membranes = leaky_sequence(currents, LeakyParameters(), membrane=start)
    spike, membrane = leaky_step(currents[0], start, LeakyParameters())
    assert torch.equal(spikes[0], spike) and torch.equal(membranes[0], membrane)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"beta": 0.0}, "beta"), ({"beta": 1.5}, "beta"), ({"threshold": 0.0}, "threshold")],
)
def test_module_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Leaky(**kwargs)


def test_module_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"\(T, B, C\)"):
        Leaky()(torch.zeros(4, 3))
