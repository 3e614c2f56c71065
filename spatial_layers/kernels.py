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


def _taps(max_delay: int, like: Tensor) -> Tensor:
    return torch.arange(max_delay + 1, device=like.device, dtype=like.dtype)


def gaussian_kernel(delays: Tensor, max_delay: int, sigma: float | Tensor) -> Tensor:
    r"""Normalised Gaussian kernel centred on each delay.

    .. math::
        K_{k} = \frac{e^{-(k - d)^2 / 2\sigma^2}}
                     {\sum_{k'} e^{-(k' - d)^2 / 2\sigma^2} + \epsilon}

    Args:
        delays: delays in steps, shape (...).
        max_delay: last tap index.
        sigma: width in steps (> 0), a number or a 0-d tensor.

    Returns:
        Kernel of shape (..., max_delay + 1).
    """
    offsets = (_taps(max_delay, delays) - delays[..., None]) / sigma
    bump = torch.exp(-0.5 * offsets.pow(2))
    return bump / (bump.sum(-1, keepdim=True) + GAUSS_NORM_EPS)


def linear_kernel(delays: Tensor, max_delay: int) -> Tensor:
    """Two-tap linear interpolation between floor(d) and floor(d) + 1.

    Args:
        delays: delays in steps within [0, max_delay], shape (...).
        max_delay: last tap index.

    Returns:
        Kernel of shape (..., max_delay + 1); a tap past ``max_delay`` (only
        reached with weight 0, at d == max_delay) is dropped.
    """
    lower = torch.floor(delays).detach()
    frac = (delays - lower)[..., None]
    taps = _taps(max_delay, delays)
    at_lower = (taps == lower[..., None]).to(delays.dtype)
    at_upper = (taps == lower[..., None] + 1).to(delays.dtype)
    return at_lower * (1 - frac) + at_upper * frac


def rounded_kernel(delays: Tensor, max_delay: int) -> Tensor:
    """One tap at round(d); gradient of :func:`linear_kernel` (straight-through).

    Args:
        delays: delays in steps within [0, max_delay], shape (...).
        max_delay: last tap index.

    Returns:
        Kernel of shape (..., max_delay + 1), one-hot in the forward pass.
    """
    soft = linear_kernel(delays, max_delay)
    hard = (_taps(max_delay, delays) == round_delays(delays.detach())[..., None]).to(delays.dtype)
    return soft + (hard - soft).detach()


def delay_kernel(delays: Tensor, max_delay: int, kind: KernelKind, sigma: float | Tensor) -> Tensor:
    """Dispatches to the kernel builder named by ``kind`` (see module doc)."""
    if kind == "gauss":
        return gaussian_kernel(delays, max_delay, sigma)
    if kind == "linear":
        return linear_kernel(delays, max_delay)
    if kind == "round":
        return rounded_kernel(delays, max_delay)
    raise ValueError(f"kernel must be one of {KERNEL_KINDS}, got {kind!r}")
