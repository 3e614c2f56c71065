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

from torch import Tensor, nn

from spatial_layers import ops
from spatial_layers.ops import BACKENDS, Backend, resolve_backend
from spatial_layers.surrogate import ArctanSpike


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


def leaky_step(
    current: Tensor, membrane: Tensor, params: LeakyParameters = DEFAULT_PARAMETERS
) -> tuple[Tensor, Tensor]:
    """One LIF step. Returns (spikes, membrane), both shaped like ``current``."""
    reset = (membrane > params.threshold).to(membrane.dtype).detach()
    membrane = params.beta * membrane + current - reset * params.threshold
    spikes = ArctanSpike.apply(membrane - params.threshold, params.alpha)
    return spikes, membrane


def _check_membrane(currents: Tensor, membrane: Tensor | None) -> Tensor:
    if currents.dim() < 2:
        raise ValueError(f"expected (T, B, C) currents, got shape {tuple(currents.shape)}")
    if membrane is None:
        return currents.new_zeros(currents.shape[1:])
    if membrane.shape != currents.shape[1:]:
        raise ValueError(
            f"initial membrane must have the shape of one step of the currents, "
            f"{tuple(currents.shape[1:])}, got {tuple(membrane.shape)}"
        )
    return membrane


def leaky_sequence(
    currents: Tensor,
    params: LeakyParameters = DEFAULT_PARAMETERS,
    membrane: Tensor | None = None,
    backend: Backend = "auto",
) -> tuple[Tensor, Tensor]:
    """Runs :func:`leaky_step` over a (T, B, C) sequence of input currents.

    Fused: one autograd node for the whole sequence, with a hand-written backward over
    time (see :func:`~spatial_layers.ops.leaky.leaky_backward_torch`). The forward numbers
    are bit for bit those of :func:`leaky_step` in a loop (and of
    ``snn.Leaky``) on either backend; gradients equal the loop's up to float
    summation order. Only the membrane trace is saved for the backward pass.

    Args:
        currents: (T, B, C) input currents.
        params: LIF constants.
        membrane: (B, C) initial membrane, zeros if None.
        backend: ``"auto"`` (Triton on CUDA tensors when installed, else torch),
            ``"torch"`` (a loop of T in-place torch ops) or ``"triton"`` (one
            kernel per direction, the loop over T inside; see
            :mod:`spatial_layers.ops.triton_lif`).

    Returns:
        spikes and membrane traces, both (T, B, C).
    """
    membrane = _check_membrane(currents, membrane)
    beta, threshold, alpha = (float(value) for value in params)
    return ops.leaky_forward(
        currents, membrane, beta, threshold, alpha, True, resolve_backend(backend, currents)
    )


def leaky_integrate(
    currents: Tensor, beta: float, membrane: Tensor | None = None, backend: Backend = "auto"
) -> Tensor:
    r"""Non-spiking leaky integrator over a (T, B, C) sequence (the readout).

    .. math:: U_t = \beta U_{t-1} + I_t, \qquad U_{-1} = \text{membrane (0 if None)}

    The loop of :func:`leaky_sequence` without threshold and reset, on the
    same backends, in one autograd node.

    Args:
        currents: (T, B, C) input currents.
        beta: membrane decay per step, in (0, 1].
        membrane: (B, C) initial membrane, zeros if None.
        backend: as in :func:`leaky_sequence`.

    Returns:
        (T, B, C) membrane trace.

    Example:
        >>> import torch
        >>> leaky_integrate(torch.ones(3, 1, 1), 0.5).flatten()
        tensor([1.0000, 1.5000, 1.7500])
    """
    membrane = _check_membrane(currents, membrane)
    return ops.leaky_forward(
        currents, membrane, float(beta), math.inf, 0.0, False, resolve_backend(backend, currents)
    )[1]


class Leaky(nn.Module):
    """Multi-step LIF layer: (T, B, C) currents -> (T, B, C) spikes.

    Stateless between calls: every call starts from a zero membrane, so no
    state leaks from one batch to the next.

    Args:
        beta: membrane decay per step, in (0, 1].
        threshold: firing threshold (> 0).
        alpha: arctan surrogate slope.
        backend: ``"auto"``, ``"torch"`` or ``"triton"`` (see :func:`leaky_sequence`);
            the numbers are the same on every backend.

    Shape:
        - Input: (T, B, C) currents.
        - Output: (T, B, C) spikes; ``forward_with_membrane`` also returns
          the (T, B, C) membrane.
    """

    def __init__(
        self,
        beta: float = 0.9,
        threshold: float = 1.0,
        alpha: float = 2.0,
        *,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        if not 0 < beta <= 1:
            raise ValueError(f"beta must be in (0, 1], got {beta}")
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.params = LeakyParameters(beta, threshold, alpha)
        self.backend = backend

    def forward(self, currents: Tensor) -> Tensor:
        return self.forward_with_membrane(currents)[0]

    def forward_with_membrane(self, currents: Tensor) -> tuple[Tensor, Tensor]:
        if currents.dim() != 3:
            raise ValueError(f"expected (T, B, C) currents, got shape {tuple(currents.shape)}")
        return leaky_sequence(currents, self.params, backend=self.backend)

    def extra_repr(self) -> str:
        beta, threshold, alpha = self.params
        return f"beta={beta}, threshold={threshold}, alpha={alpha}, backend={self.backend!r}"
