"""The neuron-family ops (``spsnn::neuron_*``, ``spsnn::recurrent_neuron_*``): Triton
against torch (forward bit for bit, in every dtype), the registrations that
``torch.compile``, ``torch.func`` and CUDA graphs rely on."""

import os
import warnings

import pytest
import torch

from spatial_layers import ops
from spatial_layers.neurons import (
    AdaptiveLeaky,
    Leaky,
    Synaptic,
    leaky_sequence,
    recurrent_leaky,
    recurrent_neurons,
)
from spatial_layers.ops.neuron_spec import CONSTANT_COUNT, STATE_COUNT

TRITON = pytest.mark.skipif(
    not (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"),
    reason="needs a GPU or Triton's interpreter",
)
DEVICE = "cpu" if os.environ.get("TRITON_INTERPRET") == "1" else "cuda"
#: (family, reset, reset_delay): every family with each of its resets.
CASES = [
    *((family, reset, delay) for family in ("lif", "cuba") for delay in (True, False)
      for reset in ("subtract", "zero", "none")),
    ("adlif", "zero", False),
]  # fmt: skip
#: T = 1, B * C not a multiple of the Triton block (256) and over it, batch 0.
SHAPES = [(1, 2, 3), (9, 5, 61), (4, 3, 300), (3, 0, 4)]


def arguments(family, shape, dtype, seed=0):
    generator = torch.Generator().manual_seed(seed)
    _, batch, size = shape
    scale = 3.0 if family == "adlif" else 1.0
    currents = (torch.randn(shape, generator=generator) * 0.8 + 0.4) * scale
    state = torch.randn(STATE_COUNT[family], batch, size, generator=generator) * 0.5
    constants = torch.rand(CONSTANT_COUNT[family], size, generator=generator) * 0.5 + 0.45
    return currents.to(dtype), state.to(dtype), constants


#: bfloat16 on a GPU only: Triton's CPU interpreter runs in numpy, which has no bfloat16.
DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    pytest.param(
        torch.bfloat16,
        marks=pytest.mark.skipif(
            DEVICE == "cpu", reason="bfloat16 needs a GPU (not in the interpreter)"
        ),
    ),
]


@TRITON
@pytest.mark.parametrize(("family", "reset", "delay"), CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_triton_forward_is_the_torch_forward_bit_for_bit(family, reset, delay, dtype, shape):
    currents, state, constants = arguments(family, shape, dtype)
    static = (family, 1.0, 2.0, reset, delay)
    want = ops.neuron_forward(currents, state, constants, *static, "torch")
    got = ops.neuron_forward(
        currents.to(DEVICE), state.to(DEVICE), constants.to(DEVICE), *static, "triton"
    )
    for expected, actual in zip(want, got, strict=True):
        assert actual.dtype == dtype and actual.shape == expected.shape
        assert torch.equal(actual.cpu(), expected)
    if shape[0] > 5 and shape[1]:
        assert 0 < want[0].float().mean() < 1


@TRITON
@pytest.mark.parametrize(("family", "reset", "delay"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_triton_backward_is_the_torch_backward(family, reset, delay, dtype):
    shape = (11, 3, 70)
    currents, state, constants = arguments(family, shape, dtype)
    generator = torch.Generator().manual_seed(1)
    grad_spikes = torch.randn(shape, generator=generator).to(dtype)
    grad_traces = torch.randn((STATE_COUNT[family], *shape), generator=generator).to(dtype)
    traces = ops.neuron_forward(currents, state, constants, family, 1.0, 2.0, reset, delay,
                                "torch")[1]  # fmt: skip
    static = (family, 1.0, 2.0, reset, delay, True)
    for grads in ((grad_spikes, None), (None, grad_traces), (grad_spikes, grad_traces)):
        want = ops.neuron_backward(traces, *grads, state, constants, currents, *static, "torch")
        moved = [None if g is None else g.to(DEVICE) for g in grads]
        got = ops.neuron_backward(
            traces.to(DEVICE), *moved, state.to(DEVICE), constants.to(DEVICE),
            currents.to(DEVICE), *static, "triton",
        )  # fmt: skip
        tolerance = 1e-5 if dtype == torch.float32 else 1e-12
        for expected, actual in zip(want, got, strict=True):
            torch.testing.assert_close(actual.cpu(), expected, rtol=tolerance, atol=tolerance)


@TRITON
@pytest.mark.parametrize("family", ["lif", "cuba", "adlif"])
def test_recurrent_triton_is_the_recurrent_torch(family):
    """Forward to float rounding of the feedback sums (bit for bit on a dyadic kernel),
    gradients of currents, kernel, bias and constants to float32 rounding."""
    generator = torch.Generator().manual_seed(2)
    steps, batch, size, taps = 10, 2, 40, 3
    kernel = ((torch.randn(size, size, taps, generator=generator) * 8).round() / 8) / size**0.5
    kernel = (kernel * 64).round() / 64
    bias = (torch.randn(size, generator=generator) * 2).round() / 16
    currents = torch.randn(steps, batch, size, generator=generator) * 0.8 + 0.4
    if family == "adlif":
        currents = currents * 8
    torch.manual_seed(5)
    neuron = {
        "lif": Leaky([0.8, 0.95], size=size, learn_beta=True, reset_delay=False),
        "cuba": Synaptic([0.4, 0.9], [0.8, 0.95], size=size, learn_alpha=True,
                         learn_beta=True, reset="zero"),
        "adlif": AdaptiveLeaky(size, learn_beta=True, learn_adaptation=True, scale=3.0),
    }[family]  # fmt: skip
    results = []
    for backend in ("torch", "triton"):
        neuron.backend = backend
        device = "cpu" if backend == "torch" else DEVICE
        moved = neuron.to(device)
        x, k, b = (t.to(device).requires_grad_() for t in (currents, kernel, bias))
        spikes, membranes = recurrent_neurons(x, k, b, moved)
        (spikes * 1.5 - membranes.pow(2) * 0.1).sum().backward()
        results.append([spikes, membranes, x.grad, k.grad, b.grad, moved.raw.grad])
        moved.raw.grad = None
    want, got = results
    assert 0.05 < want[0].mean() < 0.9
    assert torch.equal(got[0].cpu(), want[0])
    torch.testing.assert_close(got[1].cpu(), want[1], rtol=1e-6, atol=1e-6)
    for expected, actual in zip(want[2:], got[2:], strict=True):
        torch.testing.assert_close(actual.cpu(), expected, rtol=1e-4, atol=1e-5)


def neurons_under_test():
    torch.manual_seed(0)
    return [
        Leaky(),
        Leaky([0.8, 0.95], size=3, learn_beta=True, reset="zero", reset_delay=False),
        Synaptic([0.4, 0.9], 0.9, size=3, learn_alpha=True, learn_beta=True),
        AdaptiveLeaky(3, learn_beta=True, learn_adaptation=True, scale=3.0),
    ]


class Membranes(torch.nn.Module):
    """A neuron's membrane trace as a module's forward (``torch.func.functional_call``)."""

    def __init__(self, neuron) -> None:
        super().__init__()
        self.neuron = neuron

    def forward(self, x):
        return self.neuron.forward_with_membrane(x)[1]


@pytest.mark.parametrize("index", range(4), ids=["lif", "lif-per-neuron", "cuba", "adlif"])
def test_torch_func_grad_jacrev_and_vmap_equal_eager(index):
    """grad (of inputs and of learnable constants), vmap(grad) and jacrev through the
    fused ops, against torch.autograd, without the warning of a batching rule that falls
    back to a loop."""
    module = Membranes(neurons_under_test()[index].double())
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(4, 6, 2, 3, dtype=torch.float64, generator=generator) * 1.5 + 0.8

    def loss(x):
        return module(x).pow(2).sum()

    params = {name: p.detach() for name, p in module.named_parameters()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        per_sample = torch.func.vmap(torch.func.grad(loss))(inputs)
        jacobian = torch.func.jacrev(module)(inputs[0])
        call = torch.func.functional_call
        parameter_grads = torch.func.grad(lambda p: call(module, p, (inputs[0],)).pow(2).sum())(
            params
        )
    for sample, x in zip(per_sample, inputs, strict=True):
        x = x.clone().requires_grad_()
        (expected,) = torch.autograd.grad(loss(x), [x])
        torch.testing.assert_close(sample, expected, rtol=1e-12, atol=1e-12)
    expected = torch.autograd.functional.jacobian(module, inputs[0])
    torch.testing.assert_close(jacobian, expected, rtol=1e-12, atol=1e-12)
    if params:
        expected = torch.autograd.grad(loss(inputs[0]), list(module.parameters()))
        for name, want in zip(params, expected, strict=True):
            torch.testing.assert_close(parameter_grads[name], want, rtol=1e-12, atol=1e-12)


def test_recurrent_ops_under_vmap_and_grad():
    generator = torch.Generator().manual_seed(3)
    kernel = torch.randn(3, 3, 2, dtype=torch.float64, generator=generator)
    inputs = torch.randn(4, 7, 2, 3, dtype=torch.float64, generator=generator) + 0.5
    torch.manual_seed(0)
    neuron = AdaptiveLeaky(3, scale=3.0).double()
    for function in (
        lambda x: recurrent_leaky(x, kernel)[1].pow(2).sum(),
        lambda x: recurrent_neurons(x * 3, kernel, None, neuron)[1].pow(2).sum(),
        lambda x: leaky_sequence(x)[1].pow(2).sum(),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            batched = torch.func.vmap(torch.func.grad(function))(inputs)
        for sample, x in zip(batched, inputs, strict=True):
            x = x.clone().requires_grad_()
            (expected,) = torch.autograd.grad(function(x), [x])
            torch.testing.assert_close(sample, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("index", range(4), ids=["lif", "lif-per-neuron", "cuba", "adlif"])
def test_torch_compile_fullgraph_equals_eager(index):
    neuron = neurons_under_test()[index]
    inputs = torch.randn(6, 2, 3, generator=torch.Generator().manual_seed(0)) * 1.5 + 0.8
    compiled = torch.compile(neuron.forward_with_membrane, fullgraph=True, backend="aot_eager")
    x = inputs.clone().requires_grad_()
    spikes, membranes = compiled(x)
    (spikes.sum() + membranes.pow(2).sum()).backward()
    y = inputs.clone().requires_grad_()
    want_spikes, want_membranes = neuron.forward_with_membrane(y)
    (want_spikes.sum() + want_membranes.pow(2).sum()).backward()
    assert torch.equal(spikes, want_spikes) and torch.equal(membranes, want_membranes)
    torch.testing.assert_close(x.grad, y.grad)


@pytest.mark.parametrize("family", ["lif", "cuba", "adlif"])
def test_opcheck(family):
    """torch.library.opcheck: schema, fake kernel, autograd registration and the
    ``aot_dispatch`` path agree with the op."""
    currents, state, constants = arguments(family, (5, 2, 4), torch.float64)
    currents.requires_grad_()
    constants.requires_grad_()
    reset, delay = ("zero", False) if family == "adlif" else ("subtract", True)
    torch.library.opcheck(
        torch.ops.spsnn.neuron_forward.default,
        (currents, state, constants, family, 1.0, 2.0, reset, delay, "torch"),
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_cuda_graph_replays_the_fused_neurons(backend):
    """A captured forward and backward of adaptive neurons replays with the eager numbers."""
    torch.manual_seed(0)
    neuron = AdaptiveLeaky(64, learn_beta=True, learn_adaptation=True, backend=backend).cuda()
    static = torch.randn(20, 8, 64, device="cuda") * 3 + 1
    graphed = torch.cuda.make_graphed_callables(
        lambda x: neuron.forward_with_membrane(x)[1], (static.clone().requires_grad_(),)
    )
    x = (torch.randn(20, 8, 64, device="cuda") * 3 + 1).requires_grad_()
    out = graphed(x)
    out.sum().backward()
    y = x.detach().clone().requires_grad_()
    want = neuron.forward_with_membrane(y)[1]
    want.sum().backward()
    assert torch.equal(out, want)
    torch.testing.assert_close(x.grad, y.grad)
