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

import math

import torch
import triton
import triton.language as tl
from torch import Tensor

from spatial_layers.ops.neuron_spec import CONSTANT_COUNT, STATE_COUNT, compute_dtype
from spatial_layers.ops.triton_lif import NUM_WARPS, constants_like, surrogate_constants
from spatial_layers.ops.triton_neurons import (
    _backward_step,
    _forward_step,
    _load_constants,
    _reset,
)
from spatial_layers.ops.triton_neurons import flags as neuron_flags

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
def _drive(
    currents_ptr, weights_ptr, bias_ptr, spikes_ptr, acc, t, taps, row, step_stride, size,
    out, valid, HAS_BIAS: tl.constexpr, BLOCK_IN: tl.constexpr,
):  # fmt: skip
    """Step t's drive of neurons ``out`` in the currents' dtype: their current plus
    ``acc`` plus the feedback of the spikes S_{t-1-k} for k < min(K, t) through
    weights[k][out, :] (step 0 reads nothing), plus the bias."""
    acc = _feedback(
        weights_ptr, spikes_ptr, t - 1, -1, tl.minimum(taps, t), row, step_stride,
        size, out, valid, acc, False, BLOCK_IN,
    )  # fmt: skip
    if HAS_BIAS:
        acc += tl.load(bias_ptr + out, mask=valid, other=0.0).to(acc.dtype)
    current = tl.load(currents_ptr + t * step_stride + row + out, mask=valid, other=0.0)
    dtype = current.dtype
    return (current + acc.to(dtype)).to(dtype)


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
            drive = _drive(
                currents_ptr, weights_ptr, bias_ptr, spikes_ptr,
                tl.zeros([BLOCK_OUT], dtype=beta.dtype), t, taps, row, step_stride, size,
                out, valid, HAS_BIAS, BLOCK_IN,
            )  # fmt: skip
            dtype = drive.dtype
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


# --------------------------------------------------------------- every neuron family
@triton.jit
def _recurrent_neuron_forward_kernel(
    currents_ptr, weights_ptr, bias_ptr, constants_ptr, spikes_ptr, traces_ptr, scalars_ptr,
    steps, size, taps,
    FAMILY: tl.constexpr, RESET: tl.constexpr, LATE: tl.constexpr, HAS_BIAS: tl.constexpr,
    BLOCK_OUT: tl.constexpr, BLOCK_IN: tl.constexpr,
):  # fmt: skip
    """:func:`_recurrent_forward_kernel` with the family's step
    (:func:`~spatial_layers.ops.triton_neurons._forward_step`): the state of step t - 1 is
    read back from the traces (the post-reset membrane recomputed from the trace and the
    spike for an immediate reset)."""
    row = tl.program_id(0).to(tl.int64) * size
    step_stride = tl.num_programs(0).to(tl.int64) * size  # the grid is (B,)
    span = steps.to(tl.int64) * step_stride
    threshold = tl.load(scalars_ptr)
    for t in range(steps):
        now = t * step_stride + row
        before = tl.maximum(t - 1, 0) * step_stride + row
        for start in range(0, size, BLOCK_OUT):
            out = start + tl.arange(0, BLOCK_OUT)
            valid = out < size
            drive = _drive(
                currents_ptr, weights_ptr, bias_ptr, spikes_ptr,
                tl.zeros([BLOCK_OUT], dtype=threshold.dtype), t, taps, row, step_stride, size,
                out, valid, HAS_BIAS, BLOCK_IN,
            )  # fmt: skip
            beta, decay, gain, coupling, jump = _load_constants(
                constants_ptr, out, valid, size, FAMILY
            )
            has_past = valid & (t > 0)
            membrane = tl.load(
                traces_ptr + before + out, mask=has_past, other=0.0, cache_modifier=".cg"
            )
            previous = tl.load(
                spikes_ptr + before + out, mask=has_past, other=0.0, cache_modifier=".cg"
            )
            second = tl.load(
                traces_ptr + span + before + out, mask=has_past & (FAMILY != 0), other=0.0,
                cache_modifier=".cg",
            )  # fmt: skip
            if not LATE:
                membrane = _reset(membrane, previous, threshold, RESET)
            trace, spike, _, second = _forward_step(
                drive, membrane, second, previous, beta, decay, gain, coupling, jump,
                threshold, FAMILY, RESET, LATE,
            )  # fmt: skip
            tl.store(traces_ptr + now + out, trace, mask=valid)
            tl.store(spikes_ptr + now + out, spike, mask=valid)
            if FAMILY != 0:
                tl.store(traces_ptr + span + now + out, second, mask=valid)
        tl.debug_barrier()


@triton.jit
def _recurrent_neuron_backward_kernel(
    traces_ptr, weights_ptr, grad_spikes_ptr, grad_traces_ptr, constants_ptr, currents_ptr,
    grads_ptr, carries_ptr, sums_ptr, scalars_ptr,
    steps, size, taps,
    FAMILY: tl.constexpr, RESET: tl.constexpr, LATE: tl.constexpr,
    HAS_GRAD_SPIKES: tl.constexpr, HAS_GRAD_TRACES: tl.constexpr,
    NEED_CONSTANTS: tl.constexpr, HAS_CURRENTS: tl.constexpr,
    BLOCK_OUT: tl.constexpr, BLOCK_IN: tl.constexpr,
):  # fmt: skip
    """:func:`_recurrent_backward_kernel` with the family's backward step
    (:func:`~spatial_layers.ops.triton_neurons._backward_step`). The carries of step t + 1
    (G^v, G^I, G^w) live in a (3, B, C) buffer that each program reads and writes for its
    own row; the constants' sums over time accumulate in a (K, B, C) buffer alike."""
    batch_row = tl.program_id(0).to(tl.int64) * size
    row = batch_row
    batch = tl.num_programs(0).to(tl.int64) * size  # B * C
    step_stride = batch
    span = steps.to(tl.int64) * step_stride
    threshold = tl.load(scalars_ptr)
    half_alpha = tl.load(scalars_ptr + 1)
    slope_scale = tl.load(scalars_ptr + 2)
    work = threshold.dtype
    for back in range(steps):
        t = steps - 1 - back
        now = t * step_stride + row
        before = tl.maximum(t - 1, 0) * step_stride + row
        for start in range(0, size, BLOCK_OUT):
            out = start + tl.arange(0, BLOCK_OUT)
            valid = out < size
            has_past = valid & (t > 0)
            spike_grad = tl.zeros([BLOCK_OUT], dtype=work)
            spike_grad = _feedback(
                weights_ptr, grads_ptr, t + 1, 1, tl.minimum(taps, steps - 1 - t), row,
                step_stride, size, out, valid, spike_grad, True, BLOCK_IN,
            )  # fmt: skip
            if HAS_GRAD_SPIKES:
                spike_grad += tl.load(grad_spikes_ptr + now + out, mask=valid, other=0.0).to(work)
            outside_v = tl.zeros([BLOCK_OUT], dtype=work)
            outside_second = tl.zeros([BLOCK_OUT], dtype=work)
            if HAS_GRAD_TRACES:
                outside_v = tl.load(grad_traces_ptr + now + out, mask=valid, other=0.0).to(work)
                if FAMILY != 0:
                    outside_second = tl.load(
                        grad_traces_ptr + span + now + out, mask=valid, other=0.0
                    ).to(work)
            beta, decay, gain, coupling, jump = _load_constants(
                constants_ptr, out, valid, size, FAMILY
            )
            membrane = tl.load(traces_ptr + now + out, mask=valid, other=0.0).to(work)
            earlier = tl.load(traces_ptr + before + out, mask=has_past, other=0.0).to(work)
            earlier_spike = (earlier > threshold).to(work)  # 0 before step 0 (zero state)
            carry = carries_ptr + batch_row + out
            next_v = tl.load(carry, mask=valid, other=0.0, cache_modifier=".cg")
            next_i = tl.load(carry + batch, mask=valid, other=0.0, cache_modifier=".cg")
            next_w = tl.load(carry + 2 * batch, mask=valid, other=0.0, cache_modifier=".cg")
            grad_x, grad_v, grad_w, next_i, membrane_before = _backward_step(
                membrane, earlier, earlier_spike, spike_grad, outside_v, outside_second,
                next_v, next_i, next_w, beta, decay, gain, coupling, jump,
                threshold, half_alpha, slope_scale, FAMILY, RESET, LATE,
            )  # fmt: skip
            tl.store(grads_ptr + now + out, grad_x.to(grads_ptr.dtype.element_ty), mask=valid)
            tl.store(carry, grad_v, mask=valid)
            tl.store(carry + batch, next_i, mask=valid)
            tl.store(carry + 2 * batch, grad_w, mask=valid)
            if NEED_CONSTANTS:
                sums = sums_ptr + batch_row + out
                total = tl.load(sums, mask=valid, other=0.0)
                tl.store(sums, total + grad_v * membrane_before, mask=valid)
                if FAMILY != 0:
                    second_before = tl.load(
                        traces_ptr + span + before + out, mask=has_past, other=0.0
                    ).to(work)
                    if FAMILY == 1:
                        total = tl.load(sums + batch, mask=valid, other=0.0)
                        tl.store(sums + batch, total + grad_x * second_before, mask=valid)
                    else:
                        if HAS_CURRENTS:
                            current = tl.load(currents_ptr + now + out, mask=valid, other=0.0)
                            total = tl.load(sums + batch, mask=valid, other=0.0)
                            total += grad_v * (current.to(work) - second_before)
                            tl.store(sums + batch, total, mask=valid)
                        spike = (membrane > threshold).to(work)
                        after = membrane
                        if RESET == 0:
                            after = membrane - threshold * spike
                        elif RESET == 1:
                            after = membrane - membrane * spike
                        total = tl.load(sums + 2 * batch, mask=valid, other=0.0)
                        tl.store(sums + 2 * batch, total + grad_w * second_before, mask=valid)
                        total = tl.load(sums + 3 * batch, mask=valid, other=0.0)
                        tl.store(sums + 3 * batch, total + grad_w * after, mask=valid)
                        total = tl.load(sums + 4 * batch, mask=valid, other=0.0)
                        tl.store(sums + 4 * batch, total + grad_w * spike, mask=valid)
        tl.debug_barrier()


def recurrent_neuron_forward(
    currents: Tensor, kernel: Tensor, bias: Tensor | None, constants: Tensor, spec
) -> tuple[Tensor, Tensor]:
    """(T, B, C) currents, (C, C, K) kernel, optional (C,) bias, (K', C) constants ->
    (spikes (T, B, C), traces (S, T, B, C)) of a neuron family from zero state."""
    currents = currents.contiguous()
    steps, batch, size = currents.shape
    spikes = torch.empty_like(currents)
    traces = currents.new_empty((STATE_COUNT[spec.family], *currents.shape))
    constants = constants.to(compute_dtype(currents)).contiguous()
    _launch(
        _recurrent_neuron_forward_kernel,
        currents, _weights(kernel), currents if bias is None else bias.contiguous(), constants,
        spikes, traces, constants_like(currents, spec.threshold),
        steps=steps, batch=batch, size=size, taps=kernel.shape[-1], HAS_BIAS=bias is not None,
        **neuron_flags(spec),
    )  # fmt: skip
    return spikes, traces


def recurrent_neuron_backward(
    traces: Tensor,
    kernel: Tensor,
    grad_spikes: Tensor | None,
    grad_traces: Tensor | None,
    constants: Tensor,
    currents: Tensor | None,
    spec,
    need_constants: bool,
) -> tuple[Tensor, Tensor]:
    """(T, B, C) gradients of the drive (= of the currents) and (K', C) of the constants;
    see ``recurrent._recurrent_neuron_backward_torch``."""
    traces = traces.contiguous()
    _, steps, batch, size = traces.shape
    work = compute_dtype(traces)
    grads = torch.empty(traces.shape[1:], dtype=work, device=traces.device)
    carries = torch.zeros(3, batch, size, dtype=work, device=traces.device)
    rows = CONSTANT_COUNT[spec.family]
    sums = torch.zeros(rows, batch, size, dtype=work, device=traces.device)
    use_currents = currents is not None and spec.family == "adlif"
    scalars = constants_like(traces, spec.threshold, spec.alpha / 2, math.pi / 2 * spec.alpha)
    _launch(
        _recurrent_neuron_backward_kernel,
        traces, _weights(kernel),
        traces if grad_spikes is None else grad_spikes.contiguous(),
        traces if grad_traces is None else grad_traces.contiguous(),
        constants.to(work).contiguous(), currents.contiguous() if use_currents else traces,
        grads, carries, sums, scalars,
        steps=steps, batch=batch, size=size, taps=kernel.shape[-1], **neuron_flags(spec),
        HAS_GRAD_SPIKES=grad_spikes is not None, HAS_GRAD_TRACES=grad_traces is not None,
        NEED_CONSTANTS=need_constants, HAS_CURRENTS=use_currents,
    )  # fmt: skip
    return grads, sums.sum(1)
