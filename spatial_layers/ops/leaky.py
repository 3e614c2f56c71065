r"""The multi-step LIF loop as one autograd node: a custom op per direction.

``spsnn::leaky_forward`` runs the recursion of :func:`~spatial_layers.neurons.leaky_step`
over a (T, B, C) sequence (or, without ``spiking``, the leaky integrator of the readout);
``spsnn::leaky_backward`` its gradient, backwards in time. Each runs on the torch backend
(a loop of T in-place ops, below) or the Triton one (:mod:`spatial_layers.ops.triton_lif`:
one kernel per direction, the loop over T inside). Custom operators, so that
``torch.compile`` and CUDA graphs see the whole loop as one opaque op.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from spatial_layers.ops import scan
from spatial_layers.surrogate import arctan_slope
from spatial_layers.vmap_rules import fold_batch, fold_steps


def leaky_forward_torch(
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


def leaky_backward_torch(
    membranes: Tensor,
    grad_spikes: Tensor | None,
    grad_membranes: Tensor | None,
    params: tuple[float, float, float],
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
    :math:`\sigma'` the arctan surrogate (:func:`~spatial_layers.surrogate.arctan_slope`);
    ``params`` is (beta, threshold, alpha).
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
        from spatial_layers.ops import triton_lif

        return triton_lif.leaky_forward(currents, membrane, beta, threshold, spiking, membranes)
    return leaky_forward_torch(currents, membrane, beta, threshold, spiking, membranes)


def leaky_spikes_(currents: Tensor, beta: float, threshold: float, backend: str) -> Tensor:
    """Spikes of the multi-step LIF from a zero membrane, written over the currents.

    The contiguous (T, B, C) ``currents`` are overwritten with the membrane trace, the
    same bits as :func:`~spatial_layers.neurons.leaky_sequence` returns; no second
    (T, B, C) tensor is made.
    Not differentiable (no autograd node): for ops that recompute the trace in their
    backward (:mod:`spatial_layers.networks.norm_leaky`). ``backend``: ``"torch"`` or ``"triton"``.

    Returns:
        (T, B, C) spikes.
    """
    if currents.dim() != 3 or not currents.is_contiguous():
        raise ValueError(f"expected contiguous (T, B, C) currents, got {tuple(currents.shape)}")
    membrane = currents.new_zeros(currents.shape[1:])
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
    """Gradients of the currents and of the initial membrane (see :func:`leaky_backward_torch`).

    A None gradient is an output that got none (no (T, B, C) of zeros is made for it).
    Contiguous outputs, whatever the layout of the incoming gradients.
    """
    grad_membranes = None if grad_membranes is None else grad_membranes.contiguous()
    grad_spikes = None if grad_spikes is None else grad_spikes.contiguous()
    params = (beta, threshold, alpha)
    if backend == "triton":
        from spatial_layers.ops import triton_lif

        return triton_lif.leaky_backward(membranes, grad_spikes, grad_membranes, params)
    return leaky_backward_torch(membranes, grad_spikes, grad_membranes, params)


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


# Batching rules (torch.vmap, and jacrev, which vmaps the backward): the LIF is
# elementwise over the batch and channels, so the vmapped dimension joins the batch and
# one call runs every slice; (T, V * B, C) keeps the layout both backends expect.
def _folded_forward(
    apply, info, in_dims, currents, membrane, beta, threshold, alpha, spiking, backend
):
    """``apply`` (the op or :class:`_LeakyForward`) on every vmapped slice in one call."""
    size = info.batch_size
    spikes, membranes = apply(
        fold_steps(currents, in_dims[0], size),
        fold_batch(membrane, in_dims[1], size),
        beta,
        threshold,
        alpha,
        spiking,
        backend,
    )
    membranes = membranes.unflatten(1, (size, -1))
    if not spiking:  # the (0,) placeholder: no vmapped dimension
        return (spikes, membranes), (None, 1)
    return (spikes.unflatten(1, (size, -1)), membranes), (1, 1)


def _leaky_backward_vmap(
    info, in_dims, membranes, grad_spikes, grad_membranes, beta, threshold, alpha, backend
):
    size = info.batch_size
    folded = [
        None if tensor is None else fold_steps(tensor, dim, size)
        for tensor, dim in zip((membranes, grad_spikes, grad_membranes), in_dims[:3], strict=True)
    ]
    grad_currents, grad_membrane = torch.ops.spsnn.leaky_backward(
        *folded, beta, threshold, alpha, backend
    )
    return (grad_currents.unflatten(1, (size, -1)), grad_membrane.unflatten(0, (size, -1))), (1, 0)


torch.library.register_vmap(
    "spsnn::leaky_forward", functools.partial(_folded_forward, torch.ops.spsnn.leaky_forward)
)
torch.library.register_vmap("spsnn::leaky_backward", _leaky_backward_vmap)


class _LeakyForward(torch.autograd.Function):
    """``spsnn::leaky_forward`` with its registered autograd, as an autograd Function.

    torch.func transforms (grad, jacrev, vjp) refuse the autograd a custom op registers
    (torch makes it an old-style Function, without ``setup_context``): under them
    :func:`leaky_forward` runs the op through this Function, the same forward and
    backward ops, with the batching rule of the op.
    """

    @staticmethod
    def forward(currents, membrane, beta, threshold, alpha, spiking, backend):
        return torch.ops.spsnn.leaky_forward(
            currents, membrane, beta, threshold, alpha, spiking, backend
        )

    setup_context = staticmethod(_setup_leaky_context)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes, grad_membranes):
        return _leaky_forward_grad(ctx, grad_spikes, grad_membranes)

    @staticmethod
    def vmap(info, in_dims, *args):
        return _folded_forward(_LeakyForward.apply, info, in_dims, *args)


def leaky_forward(
    currents: Tensor,
    membrane: Tensor,
    beta: float,
    threshold: float,
    alpha: float,
    spiking: bool,
    backend: str,
) -> tuple[Tensor, Tensor]:
    """``torch.ops.spsnn.leaky_forward`` (see :func:`_leaky_forward`), also under
    ``torch.func`` transforms, and as a scan inside
    :func:`~spatial_layers.ops.scan.loops_as_scan`; (T, B, C) currents and (B, C)
    membrane -> (spikes, membranes)."""
    if scan.active():
        return scan.leaky_forward_scan(currents, membrane, beta, threshold, spiking)
    args = (currents, membrane, beta, threshold, alpha, spiking, backend)
    if torch._C._are_functorch_transforms_active():
        return _LeakyForward.apply(*args)
    return torch.ops.spsnn.leaky_forward(*args)
