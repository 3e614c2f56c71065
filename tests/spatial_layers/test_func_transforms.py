"""torch.func.grad, jacrev and vmap through every autograd Function of the delay layers,
against eager autograd (torch.autograd.grad, a Jacobian built row by row, a loop).

The Functions: GaussianKernel and GaussianMass (kernels), Distances (geometry),
InterpolatedKernel and FFTDelayedLinear (functional), _MaskedScale (spike_dropout),
_NormLeaky (networks.norm_leaky); the custom ops spsnn::leaky_forward/backward and
spsnn::recurrent_leaky_forward/backward (their registered autograd and batching rules);
the whole SpatialDelay layer (every delay method) and a SpatialSNN loss, through
``torch.func.functional_call``. A vmap that falls back to a per-example loop for want of
a batching rule warns; here that warning is an error.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.func import functional_call, grad, jacrev, vmap

from spatial_layers import SpatialDelay, SpatialSNN
from spatial_layers.functional import FFTDelayedLinear, interpolated_kernel
from spatial_layers.geometry import coordinate_delays, pairwise_distance
from spatial_layers.kernels import GaussianMass, gaussian_kernel
from spatial_layers.networks.norm_leaky import TimeBatchNorm, _NormLeaky, normalized_spikes
from spatial_layers.neurons import Leaky, LeakyParameters, leaky_integrate, leaky_sequence
from spatial_layers.neurons.recurrent import recurrent_leaky
from spatial_layers.spike_dropout import _MaskedScale

F64 = torch.float64
TOL = {"rtol": 1e-10, "atol": 1e-12}

pytestmark = pytest.mark.filterwarnings("error:There is a performance drop:UserWarning")


def eager_jacobian(fn, *inputs):
    """d fn / d inputs, one output element at a time with torch.autograd.grad."""
    inputs = [t.detach().requires_grad_() for t in inputs]
    out = fn(*inputs)
    rows = [
        torch.autograd.grad(value, inputs, retain_graph=True, allow_unused=True)
        for value in out.reshape(-1)
    ]
    return [
        torch.stack([torch.zeros_like(t) if r[i] is None else r[i] for r in rows]).reshape(
            (*out.shape, *t.shape)
        )
        for i, t in enumerate(inputs)
    ]


def check_all(fn, inputs, vmapped=(0,)):
    """grad, jacrev and vmap of ``fn`` (tensors -> tensor) against eager autograd."""
    probe = torch.randn_like(fn(*inputs))
    eager = eager_jacobian(lambda *a: (fn(*a) * probe).sum(), *inputs)
    argnums = tuple(range(len(inputs)))
    got = grad(lambda *a: (fn(*a) * probe).sum(), argnums=argnums)(*inputs)
    for g, e in zip(got, eager, strict=True):
        torch.testing.assert_close(g, e, **TOL)
    for g, e in zip(jacrev(fn, argnums=argnums)(*inputs), eager_jacobian(fn, *inputs), strict=True):
        torch.testing.assert_close(g, e, **TOL)
    # vmap over a stack of two versions of the chosen inputs, against a loop.
    stacked = [
        torch.stack([t, t * 1.1 + 0.05]) if i in vmapped else t for i, t in enumerate(inputs)
    ]
    in_dims = tuple(0 if i in vmapped else None for i in range(len(inputs)))
    batched = vmap(fn, in_dims=in_dims)(*stacked)
    for index in range(2):
        one = [t[index] if i in vmapped else t for i, t in enumerate(stacked)]
        torch.testing.assert_close(batched[index], fn(*one), **TOL)


@pytest.mark.parametrize("taps", [None, 3])
@pytest.mark.parametrize("vmapped", [(0,), (1,), (0, 1, 2)])
def test_gaussian_kernel(taps, vmapped, rng):
    delays = torch.rand(3, 2, generator=rng, dtype=F64) * 30
    sigma = torch.tensor(1.8, dtype=F64)
    weight = torch.randn(3, 2, generator=rng, dtype=F64)
    check_all(
        lambda d, s, w: gaussian_kernel(d, 30, s, taps=taps, weight=w),
        [delays, sigma, weight],
        vmapped,
    )


def test_gaussian_mass(rng):
    delays = torch.rand(4, generator=rng, dtype=F64) * 200
    check_all(
        lambda d, s: GaussianMass.apply(d, s, 10, 201),
        [delays, torch.tensor(3.3, dtype=F64)],
        (0, 1),
    )


def test_distances(rng):
    post = torch.rand(4, 2, generator=rng, dtype=F64) * 5
    pre = torch.rand(3, 2, generator=rng, dtype=F64) * 5
    check_all(lambda a, b: coordinate_delays(a, b, 1.3, 4), [post, pre], (0,))
    check_all(pairwise_distance, [post, pre], (0, 1))


@pytest.mark.parametrize("kind", ["linear", "round"])
def test_interpolated_kernel(kind, rng):
    weight = torch.randn(3, 2, generator=rng, dtype=F64)
    # Away from integer delays, where the linear kernel has kinks.
    delays = torch.tensor([[0.3, 2.6], [1.2, 3.7], [4.45, 0.9]], dtype=F64)
    check_all(lambda w, d: interpolated_kernel(w, d, 5, kind), [weight, delays], (0, 1))


@pytest.mark.parametrize(("steps", "size", "block"), [(9, 16, 9), (20, 10, 6)])
@pytest.mark.parametrize("vmapped", [(0,), (1,), (0, 1)])
def test_fft_delayed_linear(steps, size, block, vmapped, rng):
    """One block (transforms along time) and overlap-save blocks; the vmapped input joins
    the batch, a vmapped kernel runs per slice."""
    x = torch.randn(steps, 2, 3, generator=rng, dtype=F64)
    kernel = torch.randn(4, 3, 5, generator=rng, dtype=F64)
    check_all(lambda a, b: FFTDelayedLinear.apply(a, b, size, block), [x, kernel], vmapped)


def test_masked_scale(rng):
    x = torch.randn(5, 3, generator=rng, dtype=F64)
    keep = torch.rand(5, 3, generator=rng) < 0.6
    check_all(lambda a: _MaskedScale.apply(a, keep, 2.5), [x], (0,))


@pytest.mark.parametrize("training", [True, False])
def test_norm_leaky(training, rng):
    """Batch norm + LIF in one node; each call starts from the same running statistics
    (the training forward moves them)."""
    norm = TimeBatchNorm(3).double().train(training)
    with torch.no_grad():
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.weight.uniform_(0.5, 1.5)
    neuron = Leaky()
    currents = torch.randn(6, 2, 3, generator=rng, dtype=F64) * 2

    def spikes(y, weight, bias):
        fresh = copy.deepcopy(norm)
        with torch.no_grad():
            fresh.weight.copy_(weight)
            fresh.bias.copy_(bias)
        # The node takes the affine parameters as inputs (what autograd differentiates).
        return _NormLeaky.apply(y, weight, bias, fresh, neuron.params, neuron.backend)

    check_all(spikes, [currents, norm.weight.detach(), norm.bias.detach()], (0,))
    # The public entry point gives the same spikes under vmap as eagerly.
    stacked = torch.stack([currents, currents * 0.5])
    batched = vmap(lambda y: normalized_spikes(copy.deepcopy(norm), neuron, y))(stacked)
    for index in range(2):
        eager = normalized_spikes(copy.deepcopy(norm), neuron, stacked[index])
        assert torch.equal(batched[index], eager)


@pytest.mark.parametrize(
    ("kernel", "method"),
    [(k, m) for k in ("gauss", "linear", "round") for m in ("dense", "fft", "dft")]
    + [("gauss", "linear")],
)
def test_the_layer_through_functional_call(kernel, method, rng):
    """Every delay method (``"linear"``: the one-tap layer of delays="none")."""
    torch.manual_seed(0)
    options = {"max_delay": 0, "delays": "none"} if method == "linear" else {"max_delay": 4}
    layer = SpatialDelay(3, 2, kernel=kernel, method=method, bias=True, **options).double()
    params = {name: p.detach() for name, p in layer.named_parameters()}
    x = torch.rand(7, 2, 3, generator=rng, dtype=F64)

    def loss(p, x):
        return functional_call(layer, p, (x,)).square().sum()

    got = grad(loss)(params, x)
    layer.zero_grad()
    layer(x).square().sum().backward()
    for name, p in layer.named_parameters():
        torch.testing.assert_close(got[name], p.grad, **TOL)
    stacked = torch.stack([x, x * 0.5])
    batched = vmap(lambda xx: functional_call(layer, params, (xx,)))(stacked)
    for index in range(2):
        torch.testing.assert_close(batched[index], layer(stacked[index]), **TOL)
    per_sample = vmap(grad(loss), in_dims=(None, 0))(params, stacked)
    for index in range(2):
        one = grad(loss)(params, stacked[index])
        for name in params:
            torch.testing.assert_close(per_sample[name][index], one[name], **TOL)


PARAMS = LeakyParameters(0.8, 0.7, 2.0)


def test_leaky_op(rng):
    """spsnn::leaky_forward (spikes and membranes, from a given initial membrane) and its
    backward op, which jacrev vmaps."""
    currents = torch.randn(6, 2, 3, generator=rng, dtype=F64)
    membrane = torch.rand(2, 3, generator=rng, dtype=F64)

    def both(c, m):
        spikes, membranes = leaky_sequence(c, PARAMS, m, backend="torch")
        return torch.cat([spikes, membranes])

    check_all(both, [currents, membrane], (0,))
    check_all(both, [currents, membrane], (0, 1))
    check_all(lambda c, m: leaky_integrate(c, 0.8, m, backend="torch"), [currents, membrane], (1,))


def test_recurrent_op(rng):
    currents = torch.randn(6, 2, 3, generator=rng, dtype=F64) * 2
    kernel = torch.randn(3, 3, 2, generator=rng, dtype=F64) * 0.5
    bias = torch.randn(3, generator=rng, dtype=F64) * 0.1

    def both(c, k, b):
        return torch.cat(recurrent_leaky(c, k, b, PARAMS, backend="torch"))

    check_all(both, [currents, kernel, bias], (0,))
    check_all(both, [currents, kernel, bias], (0, 1, 2))


@pytest.mark.parametrize("options", [{}, {"recurrent": True}, {"batch_norm": True}])
def test_a_network_loss_through_functional_call(options, rng):
    """grad and jacrev of a small SpatialSNN's loss w.r.t. its parameters equal eager
    autograd; per-example gradients (vmap of grad) equal a loop."""
    torch.manual_seed(0)
    net = SpatialSNN(3, 2, [4], max_delay=3, backend="torch", **options).double().eval()
    params = {name: p.detach() for name, p in net.named_parameters()}
    x = (torch.rand(8, 2, 3, generator=rng, dtype=F64) < 0.5).to(F64)
    target = torch.randn(8, 2, 2, generator=rng, dtype=F64)

    def loss(p, x):
        # tie_weights=False: the layers share their populations' position modules, and
        # torch's untying would swap those back wrongly (the detached copy stays).
        out = functional_call(net, p, (x,), tie_weights=False)
        return (out - target[:, : x.shape[1]]).square().sum()

    originals = dict(net.named_parameters())
    net.zero_grad()
    loss(originals, x).backward()
    got = grad(loss)(params, x)
    jacobian = jacrev(loss)(params, x)
    for name, p in net.named_parameters():
        torch.testing.assert_close(got[name], p.grad, **TOL)
        torch.testing.assert_close(jacobian[name], p.grad, **TOL)
    assert all(p is originals[name] for name, p in net.named_parameters())
    singles = x.unsqueeze(2)  # (T, B, 1, C): per-example batches of one
    per_example = vmap(grad(loss), in_dims=(None, 1))(params, singles)
    for index in range(x.shape[1]):
        one = grad(loss)(params, singles[:, index])
        for name in params:
            torch.testing.assert_close(per_example[name][index], one[name], **TOL)
