"""Leaky integrate-and-fire neurons over (T, B, C), numerically equal to snn.Leaky.

The dynamics are snnTorch's ``Leaky`` with reset by subtraction, written as a
pure step function and a multi-step loop:

.. math::
    r_t = H(U_{t-1} - \\theta) \\quad (\\text{detached}) \\\\
    U_t = \\beta U_{t-1} + I_t - r_t \\theta \\\\
    S_t = H(U_t - \\theta)

with the arctan surrogate gradient of snnTorch,
:math:`\\partial S / \\partial U = (\\alpha/2) / (1 + (\\pi \\alpha (U - \\theta) / 2)^2)`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn


class LeakyParameters(NamedTuple):
    """LIF constants.

    Attributes:
        beta: membrane decay per step, in (0, 1].
        threshold: firing threshold.
        alpha: arctan surrogate slope (snnTorch's ``surrogate.atan(alpha)``).
    """

    beta: float = 0.9
    threshold: float = 1.0
    alpha: float = 2.0


class ArctanSpike(torch.autograd.Function):
    """Heaviside step forward, arctan surrogate backward (as snnTorch's ATan)."""

    @staticmethod
    def forward(ctx, shifted: Tensor, alpha: float) -> Tensor:
        ctx.save_for_backward(shifted)
        ctx.alpha = alpha
        return (shifted > 0).to(shifted.dtype)

    @staticmethod
    def backward(ctx, grad_spikes: Tensor) -> tuple[Tensor, None]:
        (shifted,) = ctx.saved_tensors
        slope = ctx.alpha / 2 / (1 + (math.pi / 2 * ctx.alpha * shifted).pow(2))
        return grad_spikes * slope, None


def leaky_step(
    current: Tensor, membrane: Tensor, params: LeakyParameters = LeakyParameters()
) -> tuple[Tensor, Tensor]:
    """One LIF step. Returns (spikes, membrane), both shaped like ``current``."""
    reset = (membrane > params.threshold).to(membrane.dtype).detach()
    membrane = params.beta * membrane + current - reset * params.threshold
    spikes = ArctanSpike.apply(membrane - params.threshold, params.alpha)
    return spikes, membrane


def leaky_sequence(
    currents: Tensor,
    params: LeakyParameters = LeakyParameters(),
    membrane: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Runs :func:`leaky_step` over a (T, B, C) sequence of input currents.

    Args:
        currents: (T, B, C) input currents.
        params: LIF constants.
        membrane: (B, C) initial membrane, zeros if None.

    Returns:
        spikes and membrane traces, both (T, B, C).
    """
    if membrane is None:
        membrane = torch.zeros_like(currents[0])
    spikes, membranes = [], []
    for current in currents:
        spike, membrane = leaky_step(current, membrane, params)
        spikes.append(spike)
        membranes.append(membrane)
    return torch.stack(spikes), torch.stack(membranes)


class Leaky(nn.Module):
    """Multi-step LIF layer: (T, B, C) currents -> (T, B, C) spikes.

    Stateless between calls: every call starts from a zero membrane, so no
    state leaks from one batch to the next.

    Args:
        beta: membrane decay per step, in (0, 1].
        threshold: firing threshold (> 0).
        alpha: arctan surrogate slope.

    Shape:
        - Input: (T, B, C) currents.
        - Output: (T, B, C) spikes; ``forward_with_membrane`` also returns
          the (T, B, C) membrane.
    """

    def __init__(self, beta: float = 0.9, threshold: float = 1.0, alpha: float = 2.0) -> None:
        super().__init__()
        if not 0 < beta <= 1:
            raise ValueError(f"beta must be in (0, 1], got {beta}")
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        self.params = LeakyParameters(beta, threshold, alpha)

    def forward(self, currents: Tensor) -> Tensor:
        return self.forward_with_membrane(currents)[0]

    def forward_with_membrane(self, currents: Tensor) -> tuple[Tensor, Tensor]:
        if currents.dim() != 3:
            raise ValueError(f"expected (T, B, C) currents, got shape {tuple(currents.shape)}")
        return leaky_sequence(currents, self.params)

    def extra_repr(self) -> str:
        beta, threshold, alpha = self.params
        return f"beta={beta}, threshold={threshold}, alpha={alpha}"
