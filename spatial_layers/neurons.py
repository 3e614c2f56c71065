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

import importlib.util
import math
import os
from typing import Literal, NamedTuple

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


def arctan_slope(shifted: Tensor, alpha: float) -> Tensor:
    r"""The arctan surrogate's derivative at ``shifted`` = U - theta (any shape),
    :math:`(\alpha / 2) / (1 + (\pi \alpha x / 2)^2)`: one expression for every
    backward pass, so that all of them round alike."""
    return alpha / 2 / (1 + (math.pi / 2 * alpha * shifted).pow(2))


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
        return grad_spikes * arctan_slope(shifted, ctx.alpha), None


def leaky_step(
    current: Tensor, membrane: Tensor, params: LeakyParameters = DEFAULT_PARAMETERS
) -> tuple[Tensor, Tensor]:
    """One LIF step. Returns (spikes, membrane), both shaped like ``current``."""
    reset = (membrane > params.threshold).to(membrane.dtype).detach()
    membrane = params.beta * membrane + current - reset * params.threshold
    spikes = ArctanSpike.apply(membrane - params.threshold, params.alpha)
    return spikes, membrane


Backend = Literal["auto", "torch", "triton"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "triton")

#: Whether the optional ``triton`` package is installed (looked up, not imported).
TRITON_FOUND = importlib.util.find_spec("triton") is not None


def resolve_backend(backend: Backend, like: Tensor) -> Literal["torch", "triton"]:
    """The implementation that runs the multi-step loops for tensors like ``like``.

    ``"auto"`` takes Triton for CUDA tensors when ``triton`` is installed, torch
    otherwise. ``"triton"`` on a CPU tensor needs Triton's interpreter
    (``TRITON_INTERPRET=1`` set before the kernels are first imported).

    Example:
        >>> resolve_backend("auto", torch.zeros(1))
        'torch'
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch" or (backend == "auto" and not (like.is_cuda and TRITON_FOUND)):
        return "torch"
    if not TRITON_FOUND:
        raise ValueError(
            "backend='triton' needs the triton package, which is not installed: "
            "pip install triton, or use backend='torch' (or 'auto')"
        )
    if not like.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(
            f"backend='triton' runs on CUDA tensors, got a tensor on {like.device}: use "
            "backend='torch' (or 'auto'), or set TRITON_INTERPRET=1 before importing "
            "spatial_layers to run the Triton kernels in Triton's CPU interpreter"
        )
    return "triton"


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

    Fused: one autograd node for the whole sequence, with a hand-written
    backward over time (see :func:`_leaky_backward_torch`). The forward numbers
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
            :mod:`spatial_layers.triton_lif`).

    Returns:
        spikes and membrane traces, both (T, B, C).
    """
    membrane = _check_membrane(currents, membrane)
    beta, threshold, alpha = (float(value) for value in params)
    return torch.ops.spsnn.leaky_forward(
        currents, membrane, beta, threshold, alpha, True, resolve_backend(backend, currents)
    )


def leaky_integrate(
    currents: Tensor, beta: float, membrane: Tensor | None = None, backend: Backend = "auto"
) -> Tensor:
    """Non-spiking leaky integrator over a (T, B, C) sequence (the readout).

    .. math:: U_t = \beta U_{t-1} + I_t, \\qquad U_{-1} = \text{membrane (0 if None)}

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
        >>> leaky_integrate(torch.ones(3, 1, 1), 0.5).flatten()
        tensor([1.0000, 1.5000, 1.7500])
    """
    membrane = _check_membrane(currents, membrane)
    return torch.ops.spsnn.leaky_forward(
        currents, membrane, float(beta), math.inf, 0.0, False, resolve_backend(backend, currents)
    )[1]


def _leaky_forward_torch(
    currents: Tensor,
    membrane: Tensor,
    beta: float,
    threshold: float,
    spiking: bool,
    membranes: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The recursion of :func:`leaky_step` (or, without ``spiking``, of the integrator).

    ``membranes``: where the (T, B, C) trace is written (default a new tensor); it may
    be ``currents`` itself (each step reads its current before it writes its membrane).
    """
    # Every per-step op writes into preallocated memory: on CPU a fresh
    # (B, C) tensor per op costs more than the arithmetic (page faults).
    membranes = torch.empty_like(currents) if membranes is None else membranes
    # beta * U + I is computed as I + (beta * U): the same bits (IEEE addition
    # commutes), and the current is read before its step's membrane is written.
    scaled = currents.new_empty(currents.shape[1:])
    if not spiking:
        for t, current in enumerate(currents):
            torch.mul(membrane, beta, out=scaled)
            membrane = torch.add(current, scaled, out=membranes[t])
        return currents.new_empty(0), membranes
    spikes = torch.empty_like(currents)
    scratch = scaled, torch.empty(currents.shape[1:], dtype=torch.bool, device=currents.device)
    # The reset of step t is the spike of step t - 1 (U > theta and
    # U - theta > 0 agree exactly in IEEE arithmetic); before step 0 it
    # comes from the initial membrane.
    reset = (membrane > threshold).to(membrane.dtype)
    for t, current in enumerate(currents):
        out = membranes[t]
        reset = leaky_step_into(current, membrane, reset, beta, threshold, out, spikes[t], scratch)
        membrane = out
    return spikes, membranes


def leaky_step_into(
    current: Tensor,
    membrane: Tensor,
    reset: Tensor,
    beta: float,
    threshold: float,
    out: Tensor,
    spikes: Tensor,
    scratch: tuple[Tensor, Tensor],
) -> Tensor:
    """One step of :func:`leaky_step` written into preallocated (B, C) memory: the
    membrane into ``out``, the spikes into ``spikes``, which it returns.

    Same operations in the same order as :func:`leaky_step`, so bit-equal results
    (threshold * reset is exact: reset is 0 or 1). ``membrane`` is U_{t-1}, ``reset``
    S_{t-1}; ``scratch`` is a (B, C) tensor and a (B, C) bool tensor. ``out`` may be
    ``current`` itself (it is read before it is written).
    """
    scaled, fired = scratch
    torch.mul(membrane, beta, out=scaled)
    torch.add(current, scaled, out=out)
    out.sub_(reset, alpha=threshold)
    torch.gt(out, threshold, out=fired)
    return spikes.copy_(fired)


def _leaky_backward_torch(
    membranes: Tensor,
    grad_spikes: Tensor | None,
    grad_membranes: Tensor | None,
    params: LeakyParameters,
) -> tuple[Tensor, Tensor]:
    r"""Backward pass over time of the multi-step LIF (or of the integrator).

    With the reset detached (as in snnTorch), the gradient of the loss with
    respect to :math:`U_t` obeys a linear recursion backwards in time,

    .. math::
        a_t = g^U_t + g^S_t\, \sigma'(U_t - \theta) + \beta\, a_{t+1},
        \qquad \partial L / \partial I_t = a_t,
        \qquad \partial L / \partial U_{-1} = \beta\, a_0

    where :math:`g^U, g^S` are the gradients reaching the membrane and spike
    outputs (None: that output got no gradient, or there are no spikes) and
    :math:`\sigma'` the arctan surrogate of :class:`ArctanSpike`.
    """
    beta, threshold, alpha = params
    if grad_spikes is not None:
        grads = grad_spikes * arctan_slope(membranes - threshold, alpha)
        if grad_membranes is not None:
            grads.add_(grad_membranes)
    elif grad_membranes is not None:
        grads = grad_membranes.clone()
    else:
        grads = torch.zeros_like(membranes)
    if grads.shape[0] == 0:
        return grads, grads.new_zeros(grads.shape[1:])
    carried = torch.empty_like(grads[0])
    for t in range(grads.shape[0] - 2, -1, -1):
        grads[t].add_(torch.mul(grads[t + 1], beta, out=carried))
    return grads, grads[0] * beta


@torch.library.custom_op("spsnn::leaky_forward", mutates_args=())
def _leaky_forward(
    currents: Tensor,
    membrane: Tensor,
    beta: float,
    threshold: float,
    alpha: float,
    spiking: bool,
    backend: str,
) -> tuple[Tensor, Tensor]:
    """(spikes, membranes) of the multi-step LIF (spikes (0,) without ``spiking``).

    A custom operator, so that ``torch.compile`` and CUDA graphs treat the whole
    loop as one opaque op (no unrolled T-step graph, no graph break). ``alpha`` is
    only read by the backward. Outputs are contiguous, as the fake kernel says.
    """
    return _run_forward(currents.contiguous(), membrane, beta, threshold, spiking, backend)


def _run_forward(
    currents: Tensor,
    membrane: Tensor,
    beta: float,
    threshold: float,
    spiking: bool,
    backend: str,
    membranes: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The forward loop on ``backend`` ("torch" or "triton"); ``membranes`` as in
    :func:`_leaky_forward_torch`."""
    if backend == "triton":
        from spatial_layers import triton_lif

        return triton_lif.leaky_forward(currents, membrane, beta, threshold, spiking, membranes)
    return _leaky_forward_torch(currents, membrane, beta, threshold, spiking, membranes)


def leaky_spikes_(
    currents: Tensor, params: LeakyParameters = DEFAULT_PARAMETERS, backend: Backend = "auto"
) -> Tensor:
    """Spikes of :func:`leaky_sequence` from a zero membrane, written over the currents.

    The contiguous (T, B, C) ``currents`` are overwritten with the membrane trace, the
    same bits as :func:`leaky_sequence` returns; no second (T, B, C) tensor is made.
    Not differentiable (no autograd node): for ops that recompute the trace in their
    backward (:mod:`spatial_layers.norm_leaky`).

    Returns:
        (T, B, C) spikes.
    """
    if currents.dim() != 3 or not currents.is_contiguous():
        raise ValueError(f"expected contiguous (T, B, C) currents, got {tuple(currents.shape)}")
    beta, threshold, _ = (float(value) for value in params)
    membrane = currents.new_zeros(currents.shape[1:])
    backend = resolve_backend(backend, currents)
    return _run_forward(currents, membrane, beta, threshold, True, backend, currents)[0]


@_leaky_forward.register_fake
def _(currents, membrane, beta, threshold, alpha, spiking, backend):
    spikes = currents.new_empty(currents.shape if spiking else (0,))
    return spikes, currents.new_empty(currents.shape)


@torch.library.custom_op("spsnn::leaky_backward", mutates_args=())
def _leaky_backward(
    membranes: Tensor,
    grad_spikes: Tensor | None,
    grad_membranes: Tensor | None,
    beta: float,
    threshold: float,
    alpha: float,
    backend: str,
) -> tuple[Tensor, Tensor]:
    """Gradients of the currents and of the initial membrane (see :func:`_leaky_backward_torch`).

    A None gradient is an output that got none (no (T, B, C) of zeros is made for it).
    Contiguous outputs, whatever the layout of the incoming gradients.
    """
    grad_membranes = None if grad_membranes is None else grad_membranes.contiguous()
    grad_spikes = None if grad_spikes is None else grad_spikes.contiguous()
    params = LeakyParameters(beta, threshold, alpha)
    if backend == "triton":
        from spatial_layers import triton_lif

        return triton_lif.leaky_backward(membranes, grad_spikes, grad_membranes, params)
    return _leaky_backward_torch(membranes, grad_spikes, grad_membranes, params)


@_leaky_backward.register_fake
def _(membranes, grad_spikes, grad_membranes, beta, threshold, alpha, backend):
    return membranes.new_empty(membranes.shape), membranes.new_empty(membranes.shape[1:])


def _setup_leaky_context(ctx, inputs, output) -> None:
    _currents, _membrane, beta, threshold, alpha, spiking, backend = inputs
    ctx.save_for_backward(output[1])
    ctx.constants = (beta, threshold, alpha, spiking, backend)
    # An output without a gradient (the membrane trace, mostly) arrives as None,
    # not as a (T, B, C) tensor of zeros.
    ctx.set_materialize_grads(False)


def _leaky_forward_grad(ctx, grad_spikes: Tensor | None, grad_membranes: Tensor | None):
    (membranes,) = ctx.saved_tensors
    beta, threshold, alpha, spiking, backend = ctx.constants
    grad_currents, grad_membrane = torch.ops.spsnn.leaky_backward(
        membranes,
        grad_spikes if spiking else None,
        grad_membranes,
        beta,
        threshold,
        alpha,
        backend,
    )
    return grad_currents, grad_membrane, None, None, None, None, None


_leaky_forward.register_autograd(_leaky_forward_grad, setup_context=_setup_leaky_context)


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
