"""Triton kernels of the multi-step LIF: one launch per layer and direction, the loop over T inside.

Each program owns a block of ``BLOCK`` neurons of the flattened (B * C) population and
walks the T steps in registers, reading one current and writing one membrane (and one
spike) per step. This module imports ``triton``; :mod:`spatial_layers.ops.leaky` loads it
only when the Triton backend is asked for, so a CPU-only install without Triton works.

Numbers: the forward runs the operations of the torch loop in
:mod:`spatial_layers.ops.leaky` in the same order with the same roundings (each
intermediate rounded to the tensor's dtype, the constants in the dtype torch uses for
them: float64 for float64 tensors, float32 otherwise) and with floating-point
contraction off (``enable_fp_fusion=False``: a GPU would otherwise fuse ``U * beta + I``
into one FMA and round once instead of twice), so it is bit-equal to the torch backend.
The backward runs the same recursion; it equals the torch backend up to float rounding.

Under ``TRITON_INTERPRET=1`` (set before this module is imported) the same kernels run
on CPU tensors in Triton's interpreter: that is how the CPU tests exercise them.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl
from torch import Tensor

#: Neurons per program: 2 per thread of a 4-warp program, coalesced loads per step.
BLOCK = 256
NUM_WARPS = 4


@triton.jit
def _neuron_block(neurons, BLOCK: tl.constexpr):
    """This program's neurons (offsets into a (B * C) step) and which of them exist."""
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    return offsets, offsets < neurons


@triton.jit
def _leaky_forward_kernel(
    currents_ptr,
    membrane0_ptr,
    membranes_ptr,
    spikes_ptr,
    constants_ptr,
    steps,
    neurons,
    SPIKING: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offsets, valid = _neuron_block(neurons, BLOCK)
    beta = tl.load(constants_ptr)
    threshold = tl.load(constants_ptr + 1)
    membrane = tl.load(membrane0_ptr + offsets, mask=valid, other=0.0)
    dtype = membrane.dtype
    # Compared in the tensor's dtype, as torch compares a tensor with a Python scalar.
    threshold_cmp = threshold.to(dtype)
    reset = (membrane > threshold_cmp).to(dtype)
    currents_ptr += offsets
    membranes_ptr += offsets
    spikes_ptr += offsets
    for _ in range(steps):
        current = tl.load(currents_ptr, mask=valid, other=0.0)
        out = (membrane * beta).to(dtype)
        out = (out + current).to(dtype)
        if SPIKING:
            out = (out - reset * threshold).to(dtype)
            reset = (out > threshold_cmp).to(dtype)
            tl.store(spikes_ptr, reset, mask=valid)
        tl.store(membranes_ptr, out, mask=valid)
        membrane = out
        currents_ptr += neurons
        membranes_ptr += neurons
        spikes_ptr += neurons


@triton.jit
def _leaky_backward_kernel(
    membranes_ptr,
    grad_spikes_ptr,
    grad_membranes_ptr,
    grad_currents_ptr,
    grad_membrane0_ptr,
    constants_ptr,
    steps,
    neurons,
    HAS_GRAD_SPIKES: tl.constexpr,
    HAS_GRAD_MEMBRANES: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offsets, valid = _neuron_block(neurons, BLOCK)
    beta = tl.load(constants_ptr)
    threshold = tl.load(constants_ptr + 1)
    half_alpha = tl.load(constants_ptr + 2)
    slope_scale = tl.load(constants_ptr + 3)
    # Start at step T - 1 and walk back.
    last = (steps - 1).to(tl.int64) * neurons
    membranes_ptr += last + offsets
    grad_spikes_ptr += last + offsets
    grad_membranes_ptr += last + offsets
    grad_currents_ptr += last + offsets
    carried = tl.zeros([BLOCK], dtype=beta.dtype)
    for _ in range(steps):
        grad = tl.zeros([BLOCK], dtype=beta.dtype)
        if HAS_GRAD_MEMBRANES:
            grad += tl.load(grad_membranes_ptr, mask=valid, other=0.0).to(beta.dtype)
        if HAS_GRAD_SPIKES:
            shifted = tl.load(membranes_ptr, mask=valid, other=0.0).to(beta.dtype) - threshold
            scaled = slope_scale * shifted
            slope = half_alpha / (1.0 + scaled * scaled)
            grad += tl.load(grad_spikes_ptr, mask=valid, other=0.0).to(beta.dtype) * slope
        grad += carried * beta
        tl.store(grad_currents_ptr, grad.to(grad_currents_ptr.dtype.element_ty), mask=valid)
        carried = grad
        membranes_ptr -= neurons
        grad_spikes_ptr -= neurons
        grad_membranes_ptr -= neurons
        grad_currents_ptr -= neurons
    tl.store(
        grad_membrane0_ptr + offsets,
        (carried * beta).to(grad_membrane0_ptr.dtype.element_ty),
        mask=valid,
    )


_CONSTANTS: dict[tuple, Tensor] = {}


def constants_like(like: Tensor, *values: float) -> Tensor:
    """The kernels' constants in the dtype torch computes a scalar op of ``like`` in.

    Made once per (values, dtype, device) with fill kernels, never by a host-to-device
    copy, so that the call also works while a CUDA graph is being captured.
    """
    dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
    key = (values, dtype, like.device)
    if key not in _CONSTANTS:
        constants = torch.empty(len(values), dtype=dtype, device=like.device)
        for index, value in enumerate(values):
            constants[index].fill_(value)
        _CONSTANTS[key] = constants
    return _CONSTANTS[key]


def surrogate_constants(like: Tensor, beta: float, threshold: float, alpha: float) -> Tensor:
    """The backward kernels' constants: beta, threshold, and the arctan surrogate's
    ``alpha / 2`` and ``pi / 2 * alpha`` (:func:`~spatial_layers.neurons.arctan_slope`)."""
    return constants_like(like, beta, threshold, alpha / 2, math.pi / 2 * alpha)


def _launch(kernel, *tensors: Tensor, steps: int, neurons: int, **flags: bool) -> None:
    """Runs ``kernel`` over (T, B * C) tensors, one program per block of neurons."""
    if steps and neurons:  # a grid of 0 programs is an error
        kernel[(triton.cdiv(neurons, BLOCK),)](
            *tensors, steps, neurons, **flags, BLOCK=BLOCK, num_warps=NUM_WARPS,
            enable_fp_fusion=False,
        )  # fmt: skip


def leaky_forward(
    currents: Tensor,
    membrane: Tensor,
    beta: float,
    threshold: float,
    spiking: bool,
    membranes: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """(T, B, C) currents and (B, C) initial membrane -> (spikes, membranes), both (T, B, C).

    Without ``spiking`` (a leaky integrator: no threshold, no reset) the spikes are a
    (0,)-shaped tensor. ``membranes``: where the trace is written (default a new
    tensor); it may be the contiguous ``currents`` itself, since every neuron reads its
    current of a step before it writes its membrane there.
    """
    currents = currents.contiguous()
    membrane = membrane.to(currents.dtype).contiguous()
    membranes = torch.empty_like(currents) if membranes is None else membranes
    spikes = torch.empty_like(currents) if spiking else currents.new_empty(0)
    _launch(
        _leaky_forward_kernel,
        currents, membrane, membranes, spikes if spiking else membranes,
        constants_like(currents, beta, threshold),
        steps=currents.shape[0], neurons=membrane.numel(), SPIKING=spiking,
    )  # fmt: skip
    return spikes, membranes


def leaky_backward(
    membranes: Tensor,
    grad_spikes: Tensor | None,
    grad_membranes: Tensor | None,
    params: tuple[float, float, float],
) -> tuple[Tensor, Tensor]:
    """Gradients of the currents (T, B, C) and of the initial membrane (B, C).

    ``params`` is (beta, threshold, alpha) (this module imports nothing of spatial_layers,
    so that :mod:`spatial_layers.ops.leaky` can load it lazily).

    A None gradient is an output without one (for ``grad_spikes``, also a leaky
    integrator, which has no spike output): the kernel reads nothing for it.
    """
    beta, threshold, alpha = params
    membranes = membranes.contiguous()
    has_grad_spikes, has_grad_membranes = grad_spikes is not None, grad_membranes is not None
    # An absent gradient is never read: any (T, B, C) pointer stands in for it.
    grad_spikes = membranes if grad_spikes is None else grad_spikes.contiguous()
    grad_membranes = membranes if grad_membranes is None else grad_membranes.contiguous()
    grad_currents = torch.empty_like(membranes)
    # With T = 0 nothing reaches the initial membrane: its gradient is 0.
    grad_membrane0 = membranes.new_zeros(membranes.shape[1:])
    _launch(
        _leaky_backward_kernel,
        membranes, grad_spikes, grad_membranes, grad_currents, grad_membrane0,
        surrogate_constants(membranes, beta, threshold, alpha),
        steps=membranes.shape[0], neurons=grad_membrane0.numel(),
        HAS_GRAD_SPIKES=has_grad_spikes, HAS_GRAD_MEMBRANES=has_grad_membranes,
    )  # fmt: skip
    return grad_currents, grad_membrane0
