"""The fused multi-step LIF (LeakySequence) against the step-by-step autograd loop."""

import pytest
import torch

from spatial_layers.neurons import LeakyParameters, LeakySequence, leaky_sequence, leaky_step

PARAMS = [
    LeakyParameters(beta=0.9, threshold=1.0, alpha=2.0),
    LeakyParameters(beta=0.6, threshold=0.3, alpha=7.0),
    LeakyParameters(beta=1.0, threshold=2.0, alpha=0.5),
]


def loop(currents, params, membrane=None):
    """Reference: leaky_step in a Python loop, differentiated by autograd."""
    if membrane is None:
        membrane = torch.zeros_like(currents[0])
    spikes, membranes = [], []
    for current in currents:
        spike, membrane = leaky_step(current, membrane, params)
        spikes.append(spike)
        membranes.append(membrane)
    return torch.stack(spikes), torch.stack(membranes)


def drive(rng, shape, dtype=torch.float32):
    return (torch.randn(*shape, generator=rng) * 0.7 + 0.3).to(dtype)


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 3, 5), (120, 4, 33)])
def test_forward_bit_equal(params, dtype, shape, rng):
    currents = drive(rng, shape, dtype)
    membrane = drive(rng, shape[1:], dtype) * 2
    for start in (None, membrane):
        spikes, membranes = leaky_sequence(currents, params, start)
        ref_spikes, ref_membranes = loop(currents, params, start)
        assert torch.equal(spikes, ref_spikes)
        assert torch.equal(membranes, ref_membranes)
    assert ref_spikes.dtype == dtype


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_gradients_match_loop(params, dtype, tol, rng):
    currents0 = drive(rng, (60, 3, 7), dtype)
    membrane0 = drive(rng, (3, 7), dtype)
    probe_spikes = torch.randn(60, 3, 7, generator=rng).to(dtype)
    probe_membranes = torch.randn(60, 3, 7, generator=rng).to(dtype)
    grads = []
    for run in (leaky_sequence, loop):
        currents = currents0.clone().requires_grad_()
        membrane = membrane0.clone().requires_grad_()
        spikes, membranes = run(currents, params, membrane)
        ((spikes * probe_spikes).sum() + (membranes * probe_membranes).sum()).backward()
        grads.append((currents.grad, membrane.grad))
    for got, ref in zip(*grads, strict=True):
        scale = ref.abs().max().clamp_min(1.0)
        assert (got - ref).abs().max() / scale <= tol


def test_gradient_through_spikes_only_and_membranes_only(rng):
    currents0 = drive(rng, (40, 2, 6))
    for pick in (0, 1):
        grads = []
        for run in (leaky_sequence, loop):
            currents = currents0.clone().requires_grad_()
            run(currents, LeakyParameters())[pick].sum().backward()
            grads.append(currents.grad)
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-5)


def test_initial_membrane_gradient_only(rng):
    currents = drive(rng, (20, 2, 3))
    membrane = drive(rng, (2, 3)).requires_grad_()
    leaky_sequence(currents, LeakyParameters(), membrane)[1].sum().backward()
    reference = membrane.detach().clone().requires_grad_()
    loop(currents, LeakyParameters(), reference)[1].sum().backward()
    torch.testing.assert_close(membrane.grad, reference.grad)


def test_single_autograd_node_and_no_grad(rng):
    currents = drive(rng, (30, 2, 4)).requires_grad_()
    spikes, _membranes = leaky_sequence(currents)
    assert type(spikes.grad_fn).__name__ == "LeakySequenceBackward"
    with torch.no_grad():
        spikes, _ = leaky_sequence(currents)
    assert spikes.grad_fn is None


def test_matches_snntorch_on_a_long_sequence(rng):
    snn = pytest.importorskip("snntorch")
    currents = drive(rng, (300, 4, 16))
    neuron = snn.Leaky(beta=0.9, threshold=1.0, reset_mechanism="subtract")
    membrane = neuron.reset_mem()
    ref = []
    for current in currents:
        spike, membrane = neuron(current, membrane)
        ref.append(spike)
    spikes, _ = leaky_sequence(currents)
    assert torch.equal(spikes, torch.stack(ref))


def test_bf16_autocast_does_not_break(rng):
    currents = drive(rng, (20, 2, 5)).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        spikes, _ = leaky_sequence(currents.bfloat16())
    assert spikes.dtype == torch.bfloat16
    spikes.float().sum().backward()
    assert torch.isfinite(currents.grad).all()


def test_function_is_exported():
    assert LeakySequence.apply is not None
