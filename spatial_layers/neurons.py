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


#: snnTorch's defaults for ``snn.Leaky(beta=0.9)`` with ``surrogate.atan()``.
DEFAULT_PARAMETERS = LeakyParameters()


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
    current: Tensor, membrane: Tensor, params: LeakyParameters = DEFAULT_PARAMETERS
) -> tuple[Tensor, Tensor]:
    """One LIF step. Returns (spikes, membrane), both shaped like ``current``."""
    reset = (membrane > params.threshold).to(membrane.dtype).detach()
    membrane = params.beta * membrane + current - reset * params.threshold
    spikes = ArctanSpike.apply(membrane - params.threshold, params.alpha)
    return spikes, membrane


def leaky_sequence(
    currents: Tensor,
    params: LeakyParameters = DEFAULT_PARAMETERS,
    membrane: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Runs :func:`leaky_step` over a (T, B, C) sequence of input currents.

    Fused: one autograd node for the whole sequence (:class:`LeakySequence`)
    instead of a graph of T steps. The forward numbers are bit for bit those
    of :func:`leaky_step` in a loop (and of ``snn.Leaky``); gradients equal
    the loop's up to float summation order.

    Args:
        currents: (T, B, C) input currents.
        params: LIF constants.
        membrane: (B, C) initial membrane, zeros if None.

    Returns:
        spikes and membrane traces, both (T, B, C).
    """
    if membrane is None:
        membrane = torch.zeros_like(currents[0])
    beta, threshold, alpha = (float(value) for value in params)
    return LeakySequence.apply(currents, membrane, beta, threshold, alpha)


class LeakySequence(torch.autograd.Function):
    r"""Multi-step LIF with a hand-written backward pass over time.

    Forward: the :func:`leaky_step` recursion, written in place into the
    (T, B, C) membrane trace; spikes are :math:`H(U_t - \theta)` for all steps
    at once. Saves only the membrane trace.

    Backward: with the reset detached (as in snnTorch), the gradient of the
    loss with respect to :math:`U_t` obeys a linear recursion backwards in
    time,

    .. math::
        a_t = g^U_t + g^S_t\, \sigma'(U_t - \theta) + \beta\, a_{t+1},
        \qquad \partial L / \partial I_t = a_t,
        \qquad \partial L / \partial U_{-1} = \beta\, a_0

    where :math:`g^U, g^S` are the gradients reaching the membrane and spike
    outputs and :math:`\sigma'` the arctan surrogate of :class:`ArctanSpike`.
    """

    @staticmethod
    def forward(
        ctx, currents: Tensor, membrane: Tensor, beta: float, threshold: float, alpha: float
    ) -> tuple[Tensor, Tensor]:
        # Every per-step op writes into preallocated memory: on CPU a fresh
        # (B, C) tensor per op costs more than the arithmetic (page faults).
        membranes = torch.empty_like(currents)
        spikes = torch.empty_like(currents)
        fired = torch.empty(currents.shape[1:], dtype=torch.bool, device=currents.device)
        # The reset of step t is the spike of step t - 1 (U > theta and
        # U - theta > 0 agree exactly in IEEE arithmetic); before step 0 it
        # comes from the initial membrane.
        reset = (membrane > threshold).to(membrane.dtype)
        for t, current in enumerate(currents):
            out = membranes[t]
            # Same operations in the same order as leaky_step, so bit-equal
            # results (threshold * reset is exact: reset is 0 or 1).
            torch.mul(membrane, beta, out=out)
            out.add_(current)
            out.sub_(reset, alpha=threshold)
            torch.gt(out, threshold, out=fired)
            reset = spikes[t].copy_(fired)
            membrane = out
        ctx.save_for_backward(membranes)
        ctx.constants = (beta, threshold, alpha)
        return spikes, membranes

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: Tensor, grad_membranes: Tensor):
        (membranes,) = ctx.saved_tensors
        beta, threshold, alpha = ctx.constants
        shifted = membranes - threshold
        # The expression of ArctanSpike.backward, for identical rounding.
        slope = alpha / 2 / (1 + (math.pi / 2 * alpha * shifted).pow(2))
        grads = grad_spikes * slope
        grads.add_(grad_membranes)
        carried = torch.empty_like(grads[0])
        for t in range(grads.shape[0] - 2, -1, -1):
            grads[t].add_(torch.mul(grads[t + 1], beta, out=carried))
        grad_membrane = grads[0] * beta if ctx.needs_input_grad[1] else None
        return grads, grad_membrane, None, None, None


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
