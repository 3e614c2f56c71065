"""The fused recurrent LIF (``recurrent_leaky``) on every backend, against a step-by-step loop.

References: ``recurrent_leaky_steps`` (``delayed_step`` and ``leaky_step`` in a Python
loop differentiated by autograd: the implementation the fused ops replace) and float64
finite differences. The Triton backend runs its real kernels: on CUDA with a GPU, else
in Triton's CPU interpreter.
"""

import os

import pytest
import torch

from spatial_layers.neurons import LeakyParameters
from spatial_layers.neurons.recurrent import recurrent_leaky
from tests.helpers.recurrent_reference import recurrent_leaky_steps

PARAMS = LeakyParameters(beta=0.85, threshold=1.0, alpha=2.0)
#: (T, B, C, K): T = 1, batch 0, batch 1, C = 1, C not a multiple of either Triton block
#: (32, 128) and over 128, K = 1, K > T.
SHAPES = [(1, 2, 5, 3), (6, 0, 4, 2), (12, 3, 37, 4), (9, 1, 130, 1), (5, 2, 6, 9), (7, 3, 1, 2)]


def device_for(backend: str) -> torch.device:
    """Triton's kernels run on CUDA, or on CPU tensors under its interpreter."""
    if backend == "triton" and os.environ.get("TRITON_INTERPRET") != "1":
        return torch.device("cuda")
    return torch.device("cpu")


def network(rng, shape, dtype=torch.float32, dyadic=False):
    """Currents, kernel and bias that drive real spikes and silences. ``dyadic``: kernel
    and bias on a grid of 1/8, so every feedback sum is exact in any order."""
    steps, batch, size, taps = shape
    currents = (torch.randn(steps, batch, size, generator=rng) * 0.7 + 0.4).to(dtype)
    kernel = torch.randn(size, size, taps, generator=rng) * 2 / size**0.5
    bias = torch.randn(size, generator=rng) * 0.2
    if dyadic:
        kernel, bias = (kernel * 8).round() / 8, (bias * 8).round() / 8
    return currents, kernel.to(dtype), bias.to(dtype)


def needs_triton() -> None:
    """Skips unless the Triton kernels can run here (CUDA, or the CPU interpreter)."""
    if os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available():
        pytest.skip("needs triton (CUDA or interpreter)")
    pytest.importorskip("triton")


def run(backend, currents, kernel, bias, params=PARAMS):
    """recurrent_leaky on ``backend``'s device, results back on CPU."""
    where = device_for(backend)
    bias = None if bias is None else bias.to(where)
    spikes, membranes = recurrent_leaky(
        currents.to(where), kernel.to(where), bias, params, backend=backend
    )
    return spikes.cpu(), membranes.cpu()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_bit_equal_on_exact_feedback(shape, dtype, backend, rng):
    """Where the feedback sums are exact, every backend is bit-equal to the step loop."""
    currents, kernel, bias = network(rng, shape, dtype, dyadic=True)
    for with_bias in (bias, None):
        spikes, membranes = run(backend, currents, kernel, with_bias)
        ref_spikes, ref_membranes = recurrent_leaky_steps(currents, kernel, with_bias, PARAMS)
        assert torch.equal(spikes, ref_spikes)
        assert torch.equal(membranes, ref_membranes)
        assert spikes.dtype == membranes.dtype == dtype
    if shape[0] > 5 and shape[1]:
        assert 0 < ref_spikes.mean() < 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_torch_forward_bit_equal_on_any_kernel(shape, dtype, rng):
    """The torch backend runs the step loop's operations on its layouts: the same bits."""
    currents, kernel, bias = network(rng, shape, dtype)
    spikes, membranes = run("torch", currents, kernel, bias)
    ref_spikes, ref_membranes = recurrent_leaky_steps(currents, kernel, bias, PARAMS)
    assert torch.equal(spikes, ref_spikes)
    assert torch.equal(membranes, ref_membranes)


@pytest.mark.parametrize("shape", SHAPES)
def test_triton_forward_equal_to_rounding_on_any_kernel(shape, rng):
    """The Triton kernels sum the feedback in another order: float64 rounding apart."""
    needs_triton()
    currents, kernel, bias = network(rng, shape, torch.float64)
    spikes, membranes = run("triton", currents, kernel, bias)
    ref_spikes, ref_membranes = recurrent_leaky_steps(currents, kernel, bias, PARAMS)
    assert torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(membranes, ref_membranes, rtol=0, atol=1e-12)


def gradients(function, currents, kernel, bias, probe, backend=None):
    """Gradients of sum(probe * (spikes + membranes / 2)) with respect to the three inputs
    (``bias`` None: two), each computed on ``backend``'s device, returned on CPU."""
    where = device_for(backend) if backend else torch.device("cpu")
    inputs = [
        x.detach().to(where).requires_grad_() for x in (currents, kernel, bias) if x is not None
    ]
    if bias is None:
        inputs.append(None)
    kwargs = {"backend": backend} if backend else {}
    spikes, membranes = function(*inputs, PARAMS, **kwargs)
    ((spikes + membranes / 2) * probe.to(where)).sum().backward()
    return [x.grad.cpu() for x in inputs if x is not None]


@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float32, 1e-4), (torch.float64, 1e-10)], ids=["f32", "f64"]
)
@pytest.mark.parametrize("shape", SHAPES)
def test_gradients_match_recurrent_leaky_steps(shape, dtype, tol, backend, rng):
    """Gradients of the currents, kernel and bias against autograd through the step loop."""
    currents, kernel, bias = network(rng, shape, dtype)
    probe = torch.randn(shape[:3], generator=rng).to(dtype)
    for with_bias in (bias, None):
        ours = gradients(recurrent_leaky, currents, kernel, with_bias, probe, backend)
        reference = gradients(recurrent_leaky_steps, currents, kernel, with_bias, probe)
        assert len(ours) == len(reference) == (3 if with_bias is not None else 2)
        for got, want in zip(ours, reference, strict=True):
            torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    if shape[0] > 5 and shape[1]:
        assert ours[1].abs().sum() > 0  # the kernel gradient is exercised


def test_gradient_through_spikes_only_and_membranes_only(backend, rng):
    """An output without a gradient arrives as None in the backward: both cases."""
    currents, kernel, bias = network(rng, (10, 2, 7, 3))
    for pick in (0, 1):
        grads = []
        for function, kwargs, where in (
            (recurrent_leaky, {"backend": backend}, device_for(backend)),
            (recurrent_leaky_steps, {}, torch.device("cpu")),
        ):
            inputs = [x.to(where).requires_grad_() for x in (currents, kernel, bias)]
            function(*inputs, PARAMS, **kwargs)[pick].sum().backward()
            grads.append([x.grad.cpu() for x in inputs])
        for got, want in zip(*grads, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_gradients_match_finite_differences(backend, rng):
    """float64 central differences of the membrane trace. The spikes are steps, so their
    surrogate has no finite-difference counterpart: a huge surrogate slope ``alpha``
    makes it vanish away from the threshold, and the membranes stay away from it, so the
    map is piecewise linear with spikes (and thus the kernel's gradient) that do not move."""
    params = LeakyParameters(beta=0.8, threshold=1.0, alpha=1e15)
    where = device_for(backend)
    currents, kernel, bias = network(rng, (5, 2, 3, 2), torch.float64)
    spikes, membranes = recurrent_leaky_steps(currents, kernel, bias, params)
    assert spikes.sum() > 0
    assert (membranes - params.threshold).abs().min() > 1e-3
    inputs = tuple(x.to(where).requires_grad_() for x in (currents, kernel, bias))
    assert torch.autograd.gradcheck(
        lambda c, k, b: recurrent_leaky(c, k, b, params, backend=backend)[1],
        inputs,
        eps=1e-6,
        atol=1e-7,
        rtol=1e-5,
    )


def test_single_autograd_node_and_no_grad(backend, rng):
    where = device_for(backend)
    currents, kernel, bias = (x.to(where).requires_grad_() for x in network(rng, (6, 2, 4, 2)))
    spikes, membranes = recurrent_leaky(currents, kernel, bias, backend=backend)
    assert spikes.grad_fn is membranes.grad_fn
    assert [f.variable for f, _ in spikes.grad_fn.next_functions] == [currents, kernel, bias]
    with torch.no_grad():
        spikes, _ = recurrent_leaky(currents, kernel, bias, backend=backend)
    assert spikes.grad_fn is None


def test_triton_backend_runs_its_kernels_not_the_torch_loop(monkeypatch, rng):
    needs_triton()

    def refuse(*args):
        raise AssertionError("the torch loop ran")

    monkeypatch.setattr("spatial_layers.ops.recurrent._recurrent_forward_torch", refuse)
    monkeypatch.setattr("spatial_layers.ops.recurrent._recurrent_backward_torch", refuse)
    where = device_for("triton")
    currents, kernel, bias = (x.to(where).requires_grad_() for x in network(rng, (5, 2, 3, 2)))
    spikes, membranes = recurrent_leaky(currents, kernel, bias, backend="triton")
    (spikes.sum() + membranes.sum()).backward()
    assert currents.grad is not None and kernel.grad is not None and bias.grad is not None


def test_rejects_bad_shapes_and_backends():
    currents = torch.zeros(4, 2, 3)
    with pytest.raises(ValueError, match=r"expected \(T, B, C\) currents"):
        recurrent_leaky(currents[0], torch.zeros(3, 3, 2))
    with pytest.raises(ValueError, match=r"expected a \(3, 3, K\) recurrent kernel"):
        recurrent_leaky(currents, torch.zeros(3, 4, 2))
    with pytest.raises(ValueError, match=r"expected a \(3,\) bias"):
        recurrent_leaky(currents, torch.zeros(3, 3, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="backend must be one of"):
        recurrent_leaky(currents, torch.zeros(3, 3, 2), backend="cuda")
