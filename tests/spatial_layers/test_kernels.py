"""Temporal kernels: exact taps, rounding, gradients, and equality with the dcls package."""

import numpy as np
import pytest
import torch

from spatial_layers import delay_kernel, round_delays
from spatial_layers.kernels import (
    GAUSS_NORM_EPS,
    gaussian_kernel,
    linear_kernel,
    rounded_kernel,
)

MAX_DELAY = 6
TAPS = MAX_DELAY + 1


def one_hot(k: int, taps: int = TAPS) -> torch.Tensor:
    out = torch.zeros(taps)
    out[k] = 1.0
    return out


@pytest.mark.parametrize("k", range(TAPS))
@pytest.mark.parametrize("kind", ["linear", "round"])
def test_integer_delay_is_one_tap(kind, k):
    kernel = delay_kernel(torch.tensor(float(k)), MAX_DELAY, kind, sigma=1.0)
    assert torch.equal(kernel, one_hot(k))


@pytest.mark.parametrize("k", range(TAPS))
def test_gauss_with_tiny_sigma_is_nearly_one_tap(k):
    kernel = delay_kernel(torch.tensor(float(k)), MAX_DELAY, "gauss", sigma=0.05)
    torch.testing.assert_close(kernel, one_hot(k), atol=1e-6, rtol=0)


@pytest.mark.parametrize("k", range(MAX_DELAY))
def test_linear_half_delay_splits_evenly(k):
    kernel = linear_kernel(torch.tensor(k + 0.5), MAX_DELAY)
    expected = 0.5 * one_hot(k) + 0.5 * one_hot(k + 1)
    assert torch.equal(kernel, expected)


def test_linear_kernel_matches_interpolation_formula(rng):
    delays = torch.rand(50, generator=rng, dtype=torch.float64) * MAX_DELAY
    kernel = linear_kernel(delays, MAX_DELAY).numpy()
    expected = np.zeros((50, TAPS))
    for n, d in enumerate(delays.numpy()):
        lower = int(np.floor(d))
        expected[n, lower] += 1 - (d - lower)
        if lower + 1 < TAPS:
            expected[n, lower + 1] += d - lower
    np.testing.assert_allclose(kernel, expected, atol=1e-12)
    np.testing.assert_allclose(kernel.sum(-1), 1.0, atol=1e-12)


def test_linear_kernel_at_max_delay_is_last_tap():
    assert torch.equal(linear_kernel(torch.tensor(float(MAX_DELAY)), MAX_DELAY), one_hot(MAX_DELAY))


@pytest.mark.parametrize(
    ("delay", "tap"),
    [(2.49, 2), (2.5, 3), (2.51, 3), (0.0, 0), (0.49, 0), (0.5, 1), (5.5, 6), (6.0, 6)],
)
def test_round_kernel_rounds_half_up_never_truncates(delay, tap):
    assert round_delays(torch.tensor(delay)).item() == tap
    assert torch.equal(rounded_kernel(torch.tensor(delay), MAX_DELAY), one_hot(tap))


def test_round_delays_is_exact_just_below_a_half():
    # floor(d + 0.5) gets these wrong in float32: 0.49999997 + 0.5 rounds to 1.0.
    below = torch.nextafter(torch.tensor([0.5, 1.5, 2.5]), torch.tensor(0.0))
    assert torch.equal(round_delays(below), torch.tensor([0.0, 1.0, 2.0]))
    above = torch.nextafter(torch.tensor([0.5, 1.5, 2.5]), torch.tensor(9.0))
    assert torch.equal(round_delays(above), torch.tensor([1.0, 2.0, 3.0]))


def test_round_delays_matches_python_half_up(rng):
    delays = torch.rand(1000, generator=rng, dtype=torch.float64) * 20
    delays[:40] = torch.arange(40, dtype=torch.float64) / 2  # exact halves and integers
    expected = [float(np.floor(d) + (d - np.floor(d) >= 0.5)) for d in delays.numpy()]
    assert round_delays(delays).tolist() == expected


def test_round_kernel_has_linear_gradient():
    delays = torch.tensor([0.3, 2.7, 4.5], requires_grad=True)
    probe = torch.randn(3, TAPS)
    (rounded_kernel(delays, MAX_DELAY) * probe).sum().backward()
    grad_round = delays.grad.clone()
    delays.grad = None
    (linear_kernel(delays, MAX_DELAY) * probe).sum().backward()
    torch.testing.assert_close(grad_round, delays.grad)
    assert grad_round.abs().sum() > 0


def test_gauss_kernel_formula_and_normalisation(rng):
    delays = torch.rand(20, generator=rng, dtype=torch.float64) * MAX_DELAY
    sigma = 1.3
    kernel = gaussian_kernel(delays, MAX_DELAY, sigma).numpy()
    taps = np.arange(TAPS)
    for n, d in enumerate(delays.numpy()):
        bump = np.exp(-0.5 * ((taps - d) / sigma) ** 2)
        np.testing.assert_allclose(kernel[n], bump / (bump.sum() + GAUSS_NORM_EPS), rtol=1e-12)
    np.testing.assert_allclose(kernel.sum(-1), 1.0, atol=1e-6)


def test_gauss_kernel_peaks_at_delay_and_is_symmetric():
    kernel = gaussian_kernel(torch.tensor(3.0), MAX_DELAY, sigma=1.0)
    assert kernel.argmax().item() == 3
    torch.testing.assert_close(kernel[:3], kernel[4:].flip(0))


def test_kernel_shapes_follow_delays():
    delays = torch.rand(4, 5) * MAX_DELAY
    for kind in ("gauss", "linear", "round"):
        assert delay_kernel(delays, MAX_DELAY, kind, sigma=1.0).shape == (4, 5, TAPS)


def test_unknown_kernel_kind():
    with pytest.raises(ValueError, match="kernel must be one of"):
        delay_kernel(torch.zeros(2), MAX_DELAY, "box", sigma=1.0)


@pytest.mark.parametrize("sigma", [0.4, 1.0, 3.0])
def test_gauss_kernel_gradcheck(sigma, rng):
    delays = (torch.rand(3, 2, generator=rng, dtype=torch.float64) * MAX_DELAY).requires_grad_()
    assert torch.autograd.gradcheck(lambda d: gaussian_kernel(d, MAX_DELAY, sigma), (delays,))


def test_linear_kernel_gradcheck():
    # Away from the integer kinks, where the linear kernel is not differentiable.
    delays = torch.tensor([0.3, 1.7, 2.45, 5.9], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda d: linear_kernel(d, MAX_DELAY), (delays,))


# --- equality with the dcls package (imported here only, never by spatial_layers) ---------------


def dcls_kernel(version: str, delays: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
    """dcls's ConstructKernel1d for (C_out, C_in) delays, returned in our tap order.

    dcls puts a kernel element at index P + L // 2 of a length-L kernel and
    applies it with conv1d, a cross-correlation; as a causal delay line padded
    by L - 1 on the left, index i means a delay of L - 1 - i steps. So a delay d
    is dcls position P = (L - 1 - d) - L // 2, and dcls's taps come reversed.
    Its Gaussian width is |SIG| + 0.27.
    """
    construct = pytest.importorskip("DCLS.construct.modules")
    c_out, c_in = delays.shape
    builder = construct.ConstructKernel1d(c_out, c_in, 1, 1, (TAPS,), version)
    weight = torch.ones(c_out, c_in, 1, dtype=delays.dtype)
    position = ((TAPS - 1 - delays) - TAPS // 2)[None, :, :, None]
    sig = None if sigma is None else torch.full_like(position, sigma - 0.27)
    kernel = builder(weight, position, sig)
    assert kernel.shape == (c_out, c_in, TAPS)
    return kernel.flip(-1)


@pytest.mark.parametrize("sigma", [0.3, 0.5, 1.0, 2.5])
def test_gauss_matches_dcls(sigma, rng):
    delays = torch.rand(4, 3, generator=rng, dtype=torch.float64) * MAX_DELAY
    delays[0, :3] = torch.tensor([0.0, 3.0, float(MAX_DELAY)], dtype=torch.float64)
    ours = gaussian_kernel(delays, MAX_DELAY, sigma)
    torch.testing.assert_close(ours, dcls_kernel("gauss", delays, sigma), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("version", ["v0", "v1"])
def test_linear_matches_dcls(version, rng):
    delays = torch.rand(4, 3, generator=rng, dtype=torch.float64) * MAX_DELAY
    delays[0, :3] = torch.tensor([0.0, 2.5, float(MAX_DELAY)], dtype=torch.float64)
    ours = linear_kernel(delays, MAX_DELAY)
    # v1 divides by (sum + 1e-7) like the Gaussian; v0 is the raw interpolation.
    torch.testing.assert_close(ours, dcls_kernel(version, delays), rtol=2e-7, atol=1e-12)


@pytest.mark.parametrize("version", ["v0", "v1"])
def test_linear_gradient_matches_dcls(version, rng):
    delays = (torch.rand(3, 2, generator=rng, dtype=torch.float64) * MAX_DELAY).requires_grad_()
    probe = torch.randn(3, 2, TAPS, generator=rng, dtype=torch.float64)
    (grad_ours,) = torch.autograd.grad((linear_kernel(delays, MAX_DELAY) * probe).sum(), delays)
    (grad_dcls,) = torch.autograd.grad((dcls_kernel(version, delays) * probe).sum(), delays)
    torch.testing.assert_close(grad_ours, grad_dcls, rtol=1e-6, atol=1e-9)


def test_gauss_gradient_matches_dcls(rng):
    delays = (torch.rand(3, 2, generator=rng, dtype=torch.float64) * MAX_DELAY).requires_grad_()
    probe = torch.randn(3, 2, TAPS, generator=rng, dtype=torch.float64)
    (grad_ours,) = torch.autograd.grad(
        (gaussian_kernel(delays, MAX_DELAY, 0.8) * probe).sum(), delays
    )
    (grad_dcls,) = torch.autograd.grad((dcls_kernel("gauss", delays, 0.8) * probe).sum(), delays)
    torch.testing.assert_close(grad_ours, grad_dcls, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["gauss", "linear", "round"])
@pytest.mark.parametrize("taps", [0, 1, 3, 7, 50])
def test_first_taps_equal_the_full_kernels_in_value_and_gradient(kind, taps):
    """``taps=k`` keeps taps 0 .. k-1 of the full kernel (the Gaussian still normalised
    over all max_delay + 1 taps, here in several chunks), gradients included."""
    max_delay = 600  # > 2 chunks of the Gaussian's normaliser past the kept taps
    delays = (
        torch.tensor([0.0, 0.4, 2.5, 6.7, 13.2, 599.5, 600.0], dtype=torch.float64)
    ).requires_grad_()
    sigma = torch.tensor(40.0, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(7, min(taps, max_delay + 1), dtype=torch.float64)
    ours = delay_kernel(delays, max_delay, kind, sigma, taps=taps)
    full = delay_kernel(delays, max_delay, kind, sigma)
    assert ours.shape == (7, min(taps, max_delay + 1))
    torch.testing.assert_close(ours, full[:, :taps], rtol=1e-12, atol=1e-15)
    if taps == 0:
        return
    inputs = [delays, sigma] if kind == "gauss" else [delays]
    got = torch.autograd.grad((ours * weights).sum(), inputs)
    want = torch.autograd.grad((full[:, :taps] * weights).sum(), inputs)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("taps", [-1, 2.0, True])
def test_bad_taps(taps):
    with pytest.raises(ValueError, match="taps must be an int >= 0 or None"):
        gaussian_kernel(torch.tensor([1.0]), 4, 1.0, taps=taps)
