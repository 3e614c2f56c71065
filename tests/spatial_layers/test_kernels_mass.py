"""The Gaussian kernel's normaliser over dropped taps (GaussianMass) and the fused kernel node.

The mass of taps first .. stop - 1 is computed by a window of exact terms plus
Euler-Maclaurin sums of the runs outside it; here it is compared with the exact sum,
term by term in numpy float64, over a grid of delays, widths and tap ranges that
crosses every switch-over: ranges up to and just past the 2W exact taps, windows
clipped by either end of the range, delays outside it, sigma below the cutoff floor,
around the widths where Euler-Maclaurin converges slowest (~1.5) and far above.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from spatial_layers.kernels import (
    GAUSS_NORM_EPS,
    MASS_WINDOW,
    GaussianKernel,
    GaussianMass,
    gaussian_kernel,
)

SIGMAS = [0.05, 0.3, 0.6, 0.68, 0.7, 1.0, 1.5, 1.6, 2.0, 3.0, 7.0, 25.0, 300.0, 1e5]
RANGES = [
    (10, 10 + 2 * MASS_WINDOW),  # the last exact-only range
    (10, 11 + 2 * MASS_WINDOW),  # the first one split into window and runs
    (10, 5001),
    (0, 100),
    (3, 400),
    (50, 62),
]


def exact(delays: np.ndarray, sigma: float, first: int, stop: int):
    """(M, dM/dd, dM/dsigma, full normaliser over taps 0 .. stop - 1), term by term."""
    taps = np.arange(first, stop)[None, :]
    offsets = (taps - delays[:, None]) / sigma
    bump = np.exp(-0.5 * offsets**2)
    full = np.exp(-0.5 * ((np.arange(stop)[None, :] - delays[:, None]) / sigma) ** 2).sum(1)
    return (
        bump.sum(1),
        (bump * offsets).sum(1) / sigma,
        (bump * offsets**2).sum(1) / sigma,
        full,
    )


def normaliser(full: np.ndarray, sigma: float) -> np.ndarray:
    """The scale errors are measured in: the full normaliser the kernel divides by (+ its
    eps), at least exp(-1/(8 sigma^2)), its lower bound for a delay within the taps (so
    that delays outside them, which a layer never has, are held to the same absolute
    bound)."""
    return np.maximum(full, np.exp(-1 / (8 * sigma**2))) + GAUSS_NORM_EPS


def grid_delays(first: int, stop: int, rng: np.random.Generator) -> np.ndarray:
    edges = [0.0, first - 0.5, first, first + 0.5, stop - 1.0, stop - 1.5, stop - 0.25]
    edges += [first + MASS_WINDOW - 0.5, first + MASS_WINDOW, stop - MASS_WINDOW - 1.0]
    edges += [-3.0, stop + 4.0]  # outside the taps (not a layer's delays; still summed)
    return np.concatenate([rng.uniform(0, stop - 1, 40), np.array(edges)])


def mass_and_grads(delays: np.ndarray, sigma: float, first: int, stop: int, dtype):
    d = torch.tensor(delays, dtype=dtype, requires_grad=True)
    s = torch.tensor(sigma, dtype=dtype, requires_grad=True)
    mass = GaussianMass.apply(d, s, first, stop)
    by_delay, by_sigma = torch.autograd.grad(mass, (d, s), torch.ones_like(mass))
    return mass.detach().double().numpy(), by_delay.double().numpy(), by_sigma.item()


@pytest.mark.parametrize(("first", "stop"), RANGES)
def test_mass_equals_the_exact_sum_in_float64(first, stop):
    """Values and gradients within 1e-13 of the normaliser: the method's error (bounded
    by ~4e-14 in the docstring), not float32's."""
    rng = np.random.default_rng(first * 7919 + stop)
    for sigma in SIGMAS:
        delays = grid_delays(first, stop, rng)
        mass, by_delay, by_sigma = mass_and_grads(delays, sigma, first, stop, torch.float64)
        want, want_d, want_s, full = exact(delays, sigma, first, stop)
        scale = normaliser(full, sigma)
        np.testing.assert_array_less(np.abs(mass - want) / scale, 1e-13, err_msg=f"{sigma=}")
        np.testing.assert_array_less(
            np.abs(by_delay - want_d) / scale, 1e-13 / min(sigma, 1.0), err_msg=f"{sigma=}"
        )
        assert abs(by_sigma - want_s.sum()) <= 1e-13 * scale.sum() / min(sigma, 1.0), sigma


@pytest.mark.parametrize(("first", "stop"), RANGES)
def test_mass_in_float32_is_the_exact_sum_to_float32_rounding(first, stop):
    rng = np.random.default_rng(stop)
    for sigma in SIGMAS:
        delays = grid_delays(first, stop, rng).astype(np.float32).astype(np.float64)
        mass, by_delay, by_sigma = mass_and_grads(delays, sigma, first, stop, torch.float32)
        want, want_d, want_s, full = exact(delays, sigma, first, stop)
        scale = normaliser(full, sigma)
        # A few float32 ulps of the normaliser (the sum itself rounds per term and step);
        # derivatives in units of normaliser / sigma^2 (float32's (k - d) / sigma rounding,
        # squared in the exponent, is what a narrow Gaussian amplifies).
        np.testing.assert_array_less(np.abs(mass - want) / scale, 2e-6, err_msg=f"{sigma=}")
        narrow = min(sigma, 1.0) ** 2
        np.testing.assert_array_less(
            np.abs(by_delay - want_d) / scale, 2e-6 / narrow, err_msg=f"{sigma=}"
        )
        assert abs(by_sigma - want_s.sum()) <= 2e-6 * scale.sum() / narrow, sigma


def test_mass_propagates_nan_and_broadcasts_sigma():
    delays = torch.tensor([[3.0, float("nan")], [40.0, 7.5]], dtype=torch.float64)
    mass = GaussianMass.apply(delays, torch.tensor(2.0, dtype=torch.float64), 5, 100)
    assert torch.isnan(mass[0, 1]) and torch.isfinite(mass[[0, 1, 1], [0, 0, 1]]).all()
    # A sigma per synapse gives each synapse its own width.
    sigmas = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    per_synapse = GaussianMass.apply(delays.nan_to_num(), sigmas, 5, 100)
    for i, j in itertools.product(range(2), range(2)):
        one = GaussianMass.apply(delays.nan_to_num()[i, j], sigmas[i, j], 5, 100)
        torch.testing.assert_close(per_synapse[i, j], one, rtol=1e-14, atol=0)


def composite_gaussian(delays: torch.Tensor, max_delay: int, sigma: torch.Tensor) -> torch.Tensor:
    """The kernel as the package built it before the fused node: the same ops, autograd."""
    taps = torch.arange(0, max_delay + 1, dtype=delays.dtype)
    bump = torch.exp(-0.5 * ((taps - delays[..., None]) / sigma).pow(2))
    return bump / (bump.sum(-1, keepdim=True) + GAUSS_NORM_EPS)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_kept_tap_kernel_is_bit_for_bit_the_composite_one(dtype, rng):
    """No dropped taps (max_delay < T, every recipe): the fused node changes no number."""
    delays = torch.rand(7, 5, generator=rng, dtype=dtype) * 24
    weight = torch.randn(7, 5, generator=rng, dtype=dtype)
    sigma = torch.tensor(3.7, dtype=dtype)
    want = composite_gaussian(delays, 24, sigma)
    assert torch.equal(gaussian_kernel(delays, 24, sigma), want)
    assert torch.equal(gaussian_kernel(delays, 24, sigma, weight=weight), weight[..., None] * want)
    assert torch.equal(gaussian_kernel(delays, 24, sigma, taps=100), want)


@pytest.mark.parametrize("taps", [None, 4, 30])
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_gradients_equal_the_composite_ones(taps, weighted, rng):
    max_delay = 40
    delays = (torch.rand(6, 4, generator=rng, dtype=torch.float64) * max_delay).requires_grad_()
    sigma = torch.tensor(2.3, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 4, generator=rng, dtype=torch.float64, requires_grad=True)
    kept = max_delay + 1 if taps is None else taps
    probe = torch.randn(6, 4, kept, generator=rng, dtype=torch.float64)
    inputs = [delays, sigma, weight] if weighted else [delays, sigma]
    ours = gaussian_kernel(delays, max_delay, sigma, taps=taps, weight=weight if weighted else None)
    full = composite_gaussian(delays, max_delay, sigma)[..., :kept]
    if weighted:
        full = weight[..., None] * full
    torch.testing.assert_close(ours, full, rtol=1e-13, atol=1e-15)
    got = torch.autograd.grad((ours * probe).sum(), inputs)
    want = torch.autograd.grad((full * probe).sum(), inputs)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("grads_in_forward", [True, False])
def test_fused_node_passes_gradcheck_with_dropped_taps(grads_in_forward, rng):
    """With the mass's derivatives made in the forward pass, or recomputed in the backward."""
    delays = (torch.rand(3, 2, generator=rng, dtype=torch.float64) * 60).requires_grad_()
    sigma = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 2, generator=rng, dtype=torch.float64, requires_grad=True)

    def kernel(d, s, w):
        return GaussianKernel.apply(d, s, w, 60, 5, grads_in_forward)[0]

    assert torch.autograd.gradcheck(kernel, (delays, sigma, weight))


def test_the_normaliser_of_a_long_line_costs_no_taps_it_drops():
    """T=10 of max_delay=5000 builds no (.., 5001) tensor: the largest tensor the kernel's
    forward and backward make is a few times the (.., 10) kernel (window, run ends)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    largest = []

    class Sizes(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, tuple | list) else [out]:
                if isinstance(t, torch.Tensor):
                    largest.append(t.numel())
            return out

    delays = (torch.rand(8, 6) * 5000).requires_grad_()
    with Sizes():
        kernel = gaussian_kernel(delays, 5000, torch.tensor(40.0), taps=10)
        kernel.sum().backward()
    assert kernel.shape == (8, 6, 10)
    assert max(largest) <= 8 * 6 * 2 * MASS_WINDOW
