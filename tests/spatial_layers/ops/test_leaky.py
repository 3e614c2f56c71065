"""The fused multi-step LIF and leaky integrator, on every backend, against step-by-step loops.

References: :func:`leaky_step` (and the integrator's recursion) in a Python loop
differentiated by autograd, ``snn.Leaky``, and float64 finite differences. The Triton
backend runs its real kernels: on CUDA with a GPU, else in Triton's CPU interpreter.
The in-place LIF (``leaky_spikes_``) writes the membranes over its currents.
"""

import os

import pytest
import torch

from spatial_layers.neurons import (
    LeakyParameters,
    leaky_integrate,
    leaky_sequence,
    leaky_step,
    resolve_backend,
)
from spatial_layers.ops import leaky_spikes_

PARAMS = [
    LeakyParameters(beta=0.9, threshold=1.0, alpha=2.0),
    LeakyParameters(beta=0.6, threshold=0.3, alpha=7.0),
    LeakyParameters(beta=1.0, threshold=2.0, alpha=0.5),
]
#: Shapes with B * C not a multiple of the Triton block (256), T = 1, and batch 0.
SHAPES = [(1, 1, 1), (7, 3, 5), (120, 4, 33), (3, 2, 300), (1, 5, 7), (4, 0, 3)]


def device_for(backend: str) -> torch.device:
    """Triton's kernels run on CUDA, or on CPU tensors under its interpreter."""
    if backend == "triton" and os.environ.get("TRITON_INTERPRET") != "1":
        return torch.device("cuda")
    return torch.device("cpu")


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


def integrator_loop(currents, beta, membrane=None):
    """Reference: U_t = beta U_{t-1} + I_t in a Python loop."""
    if membrane is None:
        membrane = torch.zeros_like(currents[0])
    trace = []
    for current in currents:
        membrane = beta * membrane + current
        trace.append(membrane)
    return torch.stack(trace)


def drive(rng, shape, dtype=torch.float32, device="cpu"):
    return (torch.randn(*shape, generator=rng) * 0.7 + 0.3).to(dtype).to(device)


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_bit_equal(params, dtype, shape, backend, rng):
    device = device_for(backend)
    currents = drive(rng, shape, dtype, device)
    membrane = drive(rng, shape[1:], dtype, device) * 2
    for start in (None, membrane):
        spikes, membranes = leaky_sequence(currents, params, start, backend=backend)
        ref_spikes, ref_membranes = loop(
            currents.cpu(), params, None if start is None else start.cpu()
        )
        assert torch.equal(spikes.cpu(), ref_spikes)
        assert torch.equal(membranes.cpu(), ref_membranes)
        assert spikes.dtype == membranes.dtype == dtype
    if shape[1] and shape[0] > 10:
        assert 0 < ref_spikes.mean() < 1  # the test drives real spikes and silences


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_integrator_forward_bit_equal(shape, dtype, backend, rng):
    device = device_for(backend)
    currents = drive(rng, shape, dtype, device)
    membrane = drive(rng, shape[1:], dtype, device)
    for start in (None, membrane):
        ours = leaky_integrate(currents, 0.8, start, backend=backend)
        ref = integrator_loop(currents.cpu(), 0.8, None if start is None else start.cpu())
        assert torch.equal(ours.cpu(), ref)


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("shape", [(60, 3, 7), (9, 2, 301)])
def test_gradients_match_loop(params, dtype, tol, shape, backend, rng):
    device = device_for(backend)
    currents0 = drive(rng, shape, dtype)
    membrane0 = drive(rng, shape[1:], dtype)
    probe_spikes = torch.randn(*shape, generator=rng).to(dtype)
    probe_membranes = torch.randn(*shape, generator=rng).to(dtype)
    grads = []
    for run, where in ((leaky_sequence, device), (loop, torch.device("cpu"))):
        currents = currents0.clone().to(where).requires_grad_()
        membrane = membrane0.clone().to(where).requires_grad_()
        kwargs = {"backend": backend} if run is leaky_sequence else {}
        spikes, membranes = run(currents, params, membrane, **kwargs)
        loss = (spikes * probe_spikes.to(where)).sum() + (
            membranes * probe_membranes.to(where)
        ).sum()
        loss.backward()
        grads.append((currents.grad.cpu(), membrane.grad.cpu()))
    for got, ref in zip(*grads, strict=True):
        scale = ref.abs().max().clamp_min(1.0)
        assert (got - ref).abs().max() / scale <= tol


def test_backends_agree_on_gradients_to_float32_rounding(backend, rng):
    """Each backend's gradients against the torch backend's, at float32."""
    device = device_for(backend)
    currents0, membrane0 = drive(rng, (50, 3, 90)), drive(rng, (3, 90))
    probe = torch.randn(50, 3, 90, generator=rng)
    grads = []
    for name, where in ((backend, device), ("torch", torch.device("cpu"))):
        currents = currents0.clone().to(where).requires_grad_()
        membrane = membrane0.clone().to(where).requires_grad_()
        spikes, membranes = leaky_sequence(currents, LeakyParameters(), membrane, backend=name)
        ((spikes + 0.5 * membranes) * probe.to(where)).sum().backward()
        readout = leaky_integrate(currents, 0.7, backend=name)
        (readout * probe.to(where)).sum().backward()
        grads.append((currents.grad.cpu(), membrane.grad.cpu()))
    for got, ref in zip(*grads, strict=True):
        torch.testing.assert_close(got, ref, rtol=2e-6, atol=2e-6)


def finite_difference_check(function, inputs):
    """torch.autograd.gradcheck in float64: analytic against numerical gradients."""
    assert torch.autograd.gradcheck(function, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradients_match_finite_differences(backend, rng):
    """float64 central differences of a smooth loss of the membrane trace (the spikes are
    steps; their surrogate gradient has no finite-difference counterpart)."""
    device = device_for(backend)
    params = LeakyParameters(beta=0.8, threshold=1.0, alpha=2.0)
    currents = (drive(rng, (6, 2, 3), torch.float64) * 0.3).to(device).requires_grad_()
    membrane = (drive(rng, (2, 3), torch.float64) * 0.3).to(device).requires_grad_()
    # Far from the threshold no reset changes under the probe, so the map is linear.
    assert loop(currents.detach().cpu(), params, membrane.detach().cpu())[0].sum() == 0
    finite_difference_check(
        lambda c, m: leaky_sequence(c, params, m, backend=backend)[1], (currents, membrane)
    )
    finite_difference_check(
        lambda c, m: leaky_integrate(c, 0.7, m, backend=backend), (currents, membrane)
    )


def test_gradient_through_spikes_only_and_membranes_only(backend, rng):
    device = device_for(backend)
    currents0 = drive(rng, (40, 2, 6))
    for pick in (0, 1):
        grads = []
        for run, where in ((leaky_sequence, device), (loop, torch.device("cpu"))):
            currents = currents0.clone().to(where).requires_grad_()
            kwargs = {"backend": backend} if run is leaky_sequence else {}
            run(currents, LeakyParameters(), **kwargs)[pick].sum().backward()
            grads.append(currents.grad.cpu())
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-5)


def test_initial_membrane_gradient_only(backend, rng):
    device = device_for(backend)
    currents = drive(rng, (20, 2, 3), device=device)
    membrane = drive(rng, (2, 3), device=device).requires_grad_()
    leaky_sequence(currents, LeakyParameters(), membrane, backend=backend)[1].sum().backward()
    reference = membrane.detach().cpu().clone().requires_grad_()
    loop(currents.cpu(), LeakyParameters(), reference)[1].sum().backward()
    torch.testing.assert_close(membrane.grad.cpu(), reference.grad)


def test_single_autograd_node_and_no_grad(backend, rng):
    device = device_for(backend)
    currents = drive(rng, (30, 2, 4), device=device).requires_grad_()
    spikes, membranes = leaky_sequence(currents, backend=backend)
    # One node for the whole sequence, straight to the input's gradient accumulator.
    assert spikes.grad_fn is membranes.grad_fn
    (accumulate, _), *_ = spikes.grad_fn.next_functions
    assert accumulate.variable is currents
    with torch.no_grad():
        spikes, _ = leaky_sequence(currents, backend=backend)
    assert spikes.grad_fn is None


def test_matches_snntorch_on_a_long_sequence(backend, rng):
    snn = pytest.importorskip("snntorch")
    currents = drive(rng, (300, 4, 16))
    neuron = snn.Leaky(beta=0.9, threshold=1.0, reset_mechanism="subtract")
    membrane = neuron.reset_mem()
    ref = []
    for current in currents:
        spike, membrane = neuron(current, membrane)
        ref.append(spike)
    spikes, _ = leaky_sequence(currents.to(device_for(backend)), backend=backend)
    assert torch.equal(spikes.cpu(), torch.stack(ref))


def test_bf16_autocast_does_not_break(rng):
    currents = drive(rng, (20, 2, 5)).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        spikes, _ = leaky_sequence(currents.bfloat16())
    assert spikes.dtype == torch.bfloat16
    spikes.float().sum().backward()
    assert torch.isfinite(currents.grad).all()


def test_unknown_backend_and_bad_membrane_raise():
    with pytest.raises(ValueError, match=r"backend must be one of \('auto', 'torch', 'triton'\)"):
        leaky_sequence(torch.zeros(3, 2, 2), backend="cuda")
    with pytest.raises(ValueError, match=r"initial membrane must have the shape .*\(2, 2\)"):
        leaky_sequence(torch.zeros(3, 2, 2), membrane=torch.zeros(2))


def test_triton_backend_runs_its_kernels_not_the_torch_loop(monkeypatch, rng):
    if os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available():
        pytest.skip("needs triton (CUDA or interpreter)")
    pytest.importorskip("triton")

    def refuse(*args):
        raise AssertionError("the torch loop ran")

    monkeypatch.setattr("spatial_layers.ops.leaky.leaky_forward_torch", refuse)
    monkeypatch.setattr("spatial_layers.ops.leaky.leaky_backward_torch", refuse)
    currents = drive(rng, (5, 2, 3), device=device_for("triton")).requires_grad_()
    spikes, membranes = leaky_sequence(currents, backend="triton")
    (
        spikes.sum() + membranes.sum() + leaky_integrate(currents, 0.5, backend="triton").sum()
    ).backward()
    assert currents.grad is not None


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_forward_bit_equal(dtype, backend, rng):
    if backend == "triton" and dtype == torch.bfloat16 and device_for(backend).type == "cpu":
        # Seen with triton 3.8: past step 0 the interpreter reads bfloat16 memory wrongly
        # (numpy has no bfloat16); float16 runs the same kernel code and is checked here.
        pytest.skip("Triton's CPU interpreter mis-reads bfloat16; runs on CUDA")
    currents = drive(rng, (40, 3, 17), dtype, device_for(backend))
    spikes, membranes = leaky_sequence(currents, backend=backend)
    ref_spikes, ref_membranes = loop(currents.cpu(), LeakyParameters())
    assert torch.equal(spikes.cpu(), ref_spikes) and torch.equal(membranes.cpu(), ref_membranes)
    ours = leaky_integrate(currents, 0.8, backend=backend)
    assert torch.equal(ours.cpu(), integrator_loop(currents.cpu(), 0.8))


def test_leaky_integrate_matches_loop():
    currents = torch.randn(7, 2, 3)
    membrane = torch.zeros(2, 3)
    for t in range(7):
        membrane = 0.8 * membrane + currents[t]
        torch.testing.assert_close(leaky_integrate(currents, 0.8)[t], membrane)


#: the shape of the in-place LIF's test
LEAKY_SPIKES_SHAPE = (50, 3, 7)


def test_leaky_spikes_writes_the_membranes_over_the_currents(backend, rng):
    currents = torch.randn(LEAKY_SPIKES_SHAPE, generator=rng) * 2
    params = LeakyParameters(0.8, 1.0, 3.0)
    spikes, membranes = leaky_sequence(currents, params, backend=backend)
    trace = currents.clone()
    pointer = trace.data_ptr()
    resolved = resolve_backend(backend, trace)
    assert torch.equal(leaky_spikes_(trace, params.beta, params.threshold, resolved), spikes)
    assert torch.equal(trace, membranes) and trace.data_ptr() == pointer
    assert 0 < spikes.mean() < 1
