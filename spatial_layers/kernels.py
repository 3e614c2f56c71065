"""Delay -> temporal kernel, DCLS style.

Each synapse gets a kernel over taps k = 0 .. max_delay (tap k means "k steps
ago") whose mass sits at the synapse's real-valued delay d. Three shapes:

* ``gauss``: a Gaussian of width ``sigma`` centred on d, normalised to sum 1
  over the taps (DCLS's ``gauss`` construction).
* ``linear``: two taps, (1 - frac) at floor(d) and frac at floor(d) + 1
  (DCLS's ``v0`` construction); exact for any d, gradient through ``frac``.
* ``round``: one tap at round(d) (half up), with the ``linear`` kernel's
  gradient passed straight through; the evaluation / hardware kernel.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

KernelKind = Literal["gauss", "linear", "round"]
KERNEL_KINDS: tuple[str, ...] = ("gauss", "linear", "round")

#: Added to the Gaussian's sum before normalising, as DCLS does, so a kernel
#: whose mass lies far outside the taps never divides by zero.
GAUSS_NORM_EPS = 1e-7
#: Taps per chunk of :class:`GaussianMass` (its transient tensors are (..., chunk)).
GAUSS_NORM_CHUNK = 256


#: Narrowest default Gaussian width, in steps (a layer with max_delay 0 or 1).
MIN_DEFAULT_SIGMA = 0.5


def default_sigma(max_delay: int) -> float:
    """The Gaussian width a layer starts with: ``max(max_delay / 2, 0.5)`` steps.

    The wide start DCLS-delays anneals down from (its kernels first spread over half
    the delay range), used by :class:`~spatial_layers.SpatialDelay` and by the sigma
    schedule of the training app.

    Example:
        >>> default_sigma(25), default_sigma(0)
        (12.5, 0.5)
    """
    return max(max_delay / 2, MIN_DEFAULT_SIGMA)


def round_delays(delays: Tensor) -> Tensor:
    """Rounds delays to whole steps, halves upwards (never truncates).

    Used by the ``round`` kernel and by every export path, so that all integer
    delays in the package agree. ``floor(d + 0.5)`` would be wrong just below a
    half: in float32, 0.49999997 + 0.5 rounds to 1.0. ``d - floor(d)`` is exact,
    so comparing it with 0.5 is not.

    Example:
        >>> round_delays(torch.tensor([2.49, 2.5, 2.51, 0.49999997]))
        tensor([2., 3., 3., 0.])
    """
    lower = torch.floor(delays)
    return lower + (delays - lower >= 0.5).to(delays.dtype)


def kept_taps(max_delay: int, taps: int | None) -> int:
    """Taps a kernel builder returns: ``max_delay + 1``, or the first ``taps`` of them.

    A sequence of T steps can use taps 0 .. T - 1 only (tap k meets the input of
    k steps ago), so its forward asks for ``taps=T``.
    """
    if taps is None:
        return max_delay + 1
    if isinstance(taps, bool) or not isinstance(taps, int) or taps < 0:
        raise ValueError(f"taps must be an int >= 0 or None, got {taps!r}")
    return min(taps, max_delay + 1)


def _tap_range(first: int, stop: int, like: Tensor) -> Tensor:
    return torch.arange(first, stop, device=like.device, dtype=like.dtype)


def _gauss_offsets(delays: Tensor, sigma: float | Tensor, first: int, stop: int) -> Tensor:
    """(..., stop - first) distances (k - d) / sigma of taps first .. stop - 1 from each delay."""
    return (_tap_range(first, stop, delays) - delays[..., None]) / sigma


def _gauss_bump(delays: Tensor, sigma: float | Tensor, first: int, stop: int) -> Tensor:
    """(..., stop - first) unnormalised Gaussian of each delay at taps first .. stop - 1."""
    return torch.exp(-0.5 * _gauss_offsets(delays, sigma, first, stop).pow(2))


def _chunks(first: int, stop: int) -> list[tuple[int, int]]:
    return [(a, min(a + GAUSS_NORM_CHUNK, stop)) for a in range(first, stop, GAUSS_NORM_CHUNK)]


class GaussianMass(torch.autograd.Function):
    r"""Mass of each delay's unnormalised Gaussian on taps ``first .. stop - 1``, chunk by chunk.

    .. math::
        M(d, \sigma) = \sum_k e_k, \quad e_k = e^{-(k - d)^2 / 2\sigma^2}, \qquad
        \frac{\partial M}{\partial d} = \sum_k e_k \frac{k - d}{\sigma^2}, \quad
        \frac{\partial M}{\partial \sigma} = \sum_k e_k \frac{(k - d)^2}{\sigma^3}

    Forward and backward loop over :data:`GAUSS_NORM_CHUNK` taps at a time and save
    only ``delays`` and ``sigma``: the normaliser of taps a kernel does not keep,
    without the (..., stop - first) tensors autograd would hold.
    """

    @staticmethod
    def forward(ctx, delays: Tensor, sigma: Tensor, first: int, stop: int) -> Tensor:
        ctx.save_for_backward(delays, sigma)
        ctx.taps = (first, stop)
        mass = delays.new_zeros(delays.shape)
        for start, end in _chunks(first, stop):
            mass += _gauss_bump(delays, sigma, start, end).sum(-1)
        return mass

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        delays, sigma = ctx.saved_tensors
        first, stop = ctx.taps
        by_delay, by_sigma = torch.zeros_like(delays), torch.zeros_like(delays)
        for start, end in _chunks(first, stop):
            offsets = _gauss_offsets(delays, sigma, start, end)
            bump = torch.exp(-0.5 * offsets.pow(2))
            by_delay += (bump * offsets).sum(-1)
            by_sigma += (bump * offsets.pow(2)).sum(-1)
        grad_delays = grad * by_delay / sigma if ctx.needs_input_grad[0] else None
        grad_sigma = (grad * by_sigma).sum() / sigma if ctx.needs_input_grad[1] else None
        return grad_delays, grad_sigma, None, None


def gaussian_kernel(
    delays: Tensor, max_delay: int, sigma: float | Tensor, *, taps: int | None = None
) -> Tensor:
    r"""Normalised Gaussian kernel centred on each delay.

    .. math::
        K_{k} = \frac{e^{-(k - d)^2 / 2\sigma^2}}
                     {\sum_{k'=0}^{d_{max}} e^{-(k' - d)^2 / 2\sigma^2} + \epsilon}

    Args:
        delays: delays in steps, shape (...).
        max_delay: last tap index.
        sigma: width in steps (> 0), a number or a 0-d tensor.
        taps: keep only the first ``taps`` taps (:func:`kept_taps`). They have the
            full kernel's values: the normaliser still sums every tap, the dropped
            ones by :class:`GaussianMass`, so no (..., max_delay + 1) tensor is built.

    Returns:
        Kernel of shape (..., min(taps, max_delay + 1)).
    """
    kept = kept_taps(max_delay, taps)
    bump = _gauss_bump(delays, sigma, 0, kept)
    norm = bump.sum(-1, keepdim=True)
    if kept <= max_delay:
        width = torch.as_tensor(sigma, dtype=delays.dtype, device=delays.device)
        norm = norm + GaussianMass.apply(delays, width, kept, max_delay + 1)[..., None]
    return bump / (norm + GAUSS_NORM_EPS)


def linear_kernel(delays: Tensor, max_delay: int, *, taps: int | None = None) -> Tensor:
    """Two-tap linear interpolation between floor(d) and floor(d) + 1.

    Args:
        delays: delays in steps within [0, max_delay], shape (...).
        max_delay: last tap index.
        taps: keep only the first ``taps`` taps (:func:`kept_taps`).

    Returns:
        Kernel of shape (..., min(taps, max_delay + 1)); a tap past the last one
        (past ``max_delay``: only reached with weight 0, at d == max_delay) is dropped.
    """
    lower = torch.floor(delays).detach()
    frac = (delays - lower)[..., None]
    tap_index = _tap_range(0, kept_taps(max_delay, taps), delays)
    at_lower = (tap_index == lower[..., None]).to(delays.dtype)
    at_upper = (tap_index == lower[..., None] + 1).to(delays.dtype)
    return at_lower * (1 - frac) + at_upper * frac


def rounded_kernel(delays: Tensor, max_delay: int, *, taps: int | None = None) -> Tensor:
    """One tap at round(d); gradient of :func:`linear_kernel` (straight-through).

    Arguments and shape as :func:`linear_kernel`'s; one-hot in the forward pass.
    """
    soft = linear_kernel(delays, max_delay, taps=taps)
    tap_index = _tap_range(0, kept_taps(max_delay, taps), delays)
    hard = (tap_index == round_delays(delays.detach())[..., None]).to(delays.dtype)
    return soft + (hard - soft).detach()


def delay_kernel(
    delays: Tensor,
    max_delay: int,
    kind: KernelKind,
    sigma: float | Tensor,
    *,
    taps: int | None = None,
) -> Tensor:
    """Dispatches to the kernel builder named by ``kind`` (see module doc).

    Returns:
        (..., min(taps, max_delay + 1)) kernel; ``taps=None`` keeps all max_delay + 1.
    """
    if kind == "gauss":
        return gaussian_kernel(delays, max_delay, sigma, taps=taps)
    if kind == "linear":
        return linear_kernel(delays, max_delay, taps=taps)
    if kind == "round":
        return rounded_kernel(delays, max_delay, taps=taps)
    raise ValueError(f"kernel must be one of {KERNEL_KINDS}, got {kind!r}")
