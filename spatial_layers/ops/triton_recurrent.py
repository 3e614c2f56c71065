"""Triton kernels of the recurrent LIF: one launch per direction, the loop over T inside.

The recurrent feedback couples every neuron of a batch row with every other, so each
program owns one batch row, all C neurons (a loop over blocks of ``BLOCK_OUT``), and
walks the T steps; the spikes (forward) and gradients (backward) of past steps are read
back from the outputs in global memory (loads that skip the L1 cache), with a barrier
between steps so that every thread of the program sees the last step's writes. The
recurrent kernel is read as (K, C, C), ``weights[k, i, j] = kernel[i, j, k]``, in
(``BLOCK_OUT``, ``BLOCK_IN``) tiles: each program reads all of it once per step, so
the traffic (from L2) is T * B * K * C^2 elements per direction.

Numbers: the LIF update runs the operations of the torch backend
(:mod:`spatial_layers.ops.recurrent`) in the same order with the same roundings and
without floating-point contraction (as :mod:`spatial_layers.ops.triton_lif`), but the
feedback sum runs in another order than the torch backend's matrix product, so the
results are bit-equal only where those sums are exact (e.g. weights on a coarse dyadic
grid) and equal to float rounding otherwise. This module imports ``triton``; it is
loaded only when the Triton backend is asked for.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from spatial_layers.ops.triton_lif import NUM_WARPS, constants_like, surrogate_constants

#: Neurons computed per block, and neurons summed over per tile of the feedback.
BLOCK_OUT = 32
BLOCK_IN = 128


@triton.jit
def _feedback(
    weights_ptr, vectors_ptr, first, direction, count, row, step_stride, size, out, valid_out,
    acc, TRANSPOSED: tl.constexpr, BLOCK_IN: tl.constexpr,
):  # fmt: skip
    """acc + sum over k < count of W_k[out, :] @ v_{first + direction * k}[row, :], where
    v is a (T, B, C) tensor and W_k = weights[k] (``TRANSPOSED``: weights[k] transposed)."""
    for k in range(count):
        vector = vectors_ptr + (first + direction * k) * step_stride + row
        tile = weights_ptr + k * size * size
        for start in range(0, size, BLOCK_IN):
            inputs = start + tl.arange(0, BLOCK_IN)
            valid_in = inputs < size
            # Written by this program at an earlier step: read from L2, not L1.
            v = tl.load(vector + inputs, mask=valid_in, other=0.0, cache_modifier=".cg")
            v = v.to(acc.dtype)
            if TRANSPOSED:
                mask = valid_in[:, None] & valid_out[None, :]
                w = tl.load(tile + inputs[:, None] * size + out[None, :], mask=mask, other=0.0)
                acc += tl.sum(w.to(acc.dtype) * v[:, None], axis=0)
            else:
                mask = valid_out[:, None] & valid_in[None, :]
                w = tl.load(tile + out[:, None] * size + inputs[None, :], mask=mask, other=0.0)
                acc += tl.sum(w.to(acc.dtype) * v[None, :], axis=1)
    return acc


@triton.jit
def _recurrent_forward_kernel(
    currents_ptr, weights_ptr, bias_ptr, spikes_ptr, membranes_ptr, constants_ptr,
    steps, size, taps,
    HAS_BIAS: tl.constexpr, BLOCK_OUT: tl.constexpr, BLOCK_IN: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0).to(tl.int64) * size
    step_stride = tl.num_programs(0).to(tl.int64) * size  # the grid is (B,)
    beta = tl.load(constants_ptr)
    threshold = tl.load(constants_ptr + 1)
    for t in range(steps):
        now = t * step_stride + row
        # Step t - 1 (step 0 reads nothing: zero membrane, no reset).
        before = tl.maximum(t - 1, 0) * step_stride + row
        for start in range(0, size, BLOCK_OUT):
            out = start + tl.arange(0, BLOCK_OUT)
            valid = out < size
            acc = tl.zeros([BLOCK_OUT], dtype=beta.dtype)
            # S_{t-1-k} for k < min(K, t), through weights[k][out, :].
            acc = _feedback(
                weights_ptr, spikes_ptr, t - 1, -1, tl.minimum(taps, t), row, step_stride,
                size, out, valid, acc, False, BLOCK_IN,
            )  # fmt: skip
            if HAS_BIAS:
                acc += tl.load(bias_ptr + out, mask=valid, other=0.0).to(acc.dtype)
            current = tl.load(currents_ptr + now + out, mask=valid, other=0.0)
            dtype = current.dtype
            drive = (current + acc.to(dtype)).to(dtype)
            has_past = valid & (t > 0)
            membrane = tl.load(
                membranes_ptr + before + out, mask=has_past, other=0.0, cache_modifier=".cg"
            )
            reset = tl.load(
                spikes_ptr + before + out, mask=has_past, other=0.0, cache_modifier=".cg"
            )
            membrane = (membrane * beta).to(dtype)
            membrane = (drive + membrane).to(dtype)
            membrane = (membrane - reset * threshold).to(dtype)
            tl.store(membranes_ptr + now + out, membrane, mask=valid)
            spike = (membrane > threshold.to(dtype)).to(dtype)
            tl.store(spikes_ptr + now + out, spike, mask=valid)
        tl.debug_barrier()


@triton.jit
def _recurrent_backward_kernel(
    membranes_ptr, weights_ptr, grad_spikes_ptr, grad_membranes_ptr, grads_ptr,
    constants_ptr, steps, size, taps,
    HAS_GRAD_SPIKES: tl.constexpr, HAS_GRAD_MEMBRANES: tl.constexpr,
    BLOCK_OUT: tl.constexpr, BLOCK_IN: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0).to(tl.int64) * size
    step_stride = tl.num_programs(0).to(tl.int64) * size  # the grid is (B,)
    beta = tl.load(constants_ptr)
    threshold = tl.load(constants_ptr + 1)
    half_alpha = tl.load(constants_ptr + 2)
    slope_scale = tl.load(constants_ptr + 3)
    for back in range(steps):
        t = steps - 1 - back
        now = t * step_stride + row
        # Step t + 1 (the last step reads nothing: no gradient carried from the future).
        after = tl.minimum(t + 1, steps - 1) * step_stride + row
        for start in range(0, size, BLOCK_OUT):
            out = start + tl.arange(0, BLOCK_OUT)
            valid = out < size
            spike_grad = tl.zeros([BLOCK_OUT], dtype=beta.dtype)
            # a_{t+1+k} for k < min(K, T-1-t), through weights[k][:, out].
            spike_grad = _feedback(
                weights_ptr, grads_ptr, t + 1, 1, tl.minimum(taps, steps - 1 - t), row,
                step_stride, size, out, valid, spike_grad, True, BLOCK_IN,
            )  # fmt: skip
            if HAS_GRAD_SPIKES:
                spike_grad += tl.load(grad_spikes_ptr + now + out, mask=valid, other=0.0).to(
                    beta.dtype
                )
            shifted = tl.load(membranes_ptr + now + out, mask=valid, other=0.0).to(beta.dtype)
            scaled = slope_scale * (shifted - threshold)
            grad = spike_grad * (half_alpha / (1.0 + scaled * scaled))
            if HAS_GRAD_MEMBRANES:
                grad += tl.load(grad_membranes_ptr + now + out, mask=valid, other=0.0).to(
                    beta.dtype
                )
            has_future = valid & (t + 1 < steps)
            carried = tl.load(
                grads_ptr + after + out, mask=has_future, other=0.0, cache_modifier=".cg"
            )
            grad += carried.to(beta.dtype) * beta
            tl.store(grads_ptr + now + out, grad.to(grads_ptr.dtype.element_ty), mask=valid)
        tl.debug_barrier()


def _launch(kernel, *tensors: Tensor, steps: int, batch: int, size: int, taps: int, **flags):
    """Runs ``kernel`` with one program per batch row."""
    if steps and batch and size:  # a grid of 0 programs is an error
        kernel[(batch,)](
            *tensors, steps, size, taps, **flags,
            BLOCK_OUT=BLOCK_OUT, BLOCK_IN=BLOCK_IN, num_warps=NUM_WARPS, enable_fp_fusion=False,
        )  # fmt: skip


def _weights(kernel: Tensor) -> Tensor:
    """(C, C, K) kernel -> contiguous (K, C, C) tiles, ``weights[k, i, j] = kernel[i, j, k]``."""
    return kernel.permute(2, 0, 1).contiguous()


def recurrent_forward(
    currents: Tensor, kernel: Tensor, bias: Tensor | None, beta: float, threshold: float
) -> tuple[Tensor, Tensor]:
    """(T, B, C) currents, (C, C, K) kernel, optional (C,) bias -> (spikes, membranes),
    both (T, B, C)."""
    currents = currents.contiguous()
    steps, batch, size = currents.shape
    spikes, membranes = torch.empty_like(currents), torch.empty_like(currents)
    _launch(
        _recurrent_forward_kernel,
        currents, _weights(kernel), currents if bias is None else bias.contiguous(),
        spikes, membranes, constants_like(currents, beta, threshold),
        steps=steps, batch=batch, size=size, taps=kernel.shape[-1], HAS_BIAS=bias is not None,
    )  # fmt: skip
    return spikes, membranes


def recurrent_backward(
    membranes: Tensor,
    kernel: Tensor,
    grad_spikes: Tensor | None,
    grad_membranes: Tensor | None,
    params: tuple[float, float, float],
) -> Tensor:
    """(T, B, C) gradients of the membranes a_t (= those of the currents); see
    ``spatial_layers.ops.recurrent._recurrent_backward_torch``. ``params`` is
    (beta, threshold, alpha).

    A None gradient is an output without one: the kernel reads nothing for it.
    """
    beta, threshold, alpha = params
    membranes = membranes.contiguous()
    steps, batch, size = membranes.shape
    grads = torch.empty_like(membranes)
    _launch(
        _recurrent_backward_kernel,
        membranes, _weights(kernel),
        membranes if grad_spikes is None else grad_spikes.contiguous(),
        membranes if grad_membranes is None else grad_membranes.contiguous(),
        grads, surrogate_constants(membranes, beta, threshold, alpha),
        steps=steps, batch=batch, size=size, taps=kernel.shape[-1],
        HAS_GRAD_SPIKES=grad_spikes is not None, HAS_GRAD_MEMBRANES=grad_membranes is not None,
    )  # fmt: skip
    return grads
