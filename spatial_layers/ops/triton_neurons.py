"""Triton kernels of the neuron families (:mod:`spatial_layers.ops.neurons`): one launch per
direction, the loop over T inside.

As :mod:`spatial_layers.ops.triton_lif`: each program owns ``BLOCK`` neurons of the
flattened (B * C) population and walks the T steps in registers; neuron ``n`` reads its
per-neuron constants at channel ``n % C`` once, before the loop. The family, the reset and
its timing are compile-time constants, so each configuration is its own kernel.

Numbers: the forward runs the operations of the torch backend
(:func:`~spatial_layers.ops.neurons.neuron_forward_torch`) in the same order with the same
roundings (every intermediate rounded to the tensor's dtype, constants in float32, float64
for float64 tensors) and with contraction off (``enable_fp_fusion=False``), so it is
bit-equal to it. The backward runs the recursion of
:func:`~spatial_layers.ops.neurons.neuron_backward_torch` in float32 (float64 for float64
tensors) and sums each constant's gradient over time in registers: one (K, B * C)
partial per launch, reduced over the batch by one ``sum``. It equals the torch backend up
to float rounding. This module imports ``triton``; it is loaded only when the Triton
backend is asked for.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl
from torch import Tensor

from spatial_layers.ops.neuron_spec import (
    CONSTANT_COUNT,
    FAMILIES,
    RESETS,
    STATE_COUNT,
    Spec,
    compute_dtype,
)
from spatial_layers.ops.triton_lif import BLOCK, NUM_WARPS, constants_like


@triton.jit
def _reset(value, spike, threshold, RESET: tl.constexpr):
    """The reset of ``value`` by ``spike`` (0 or 1): subtract, zero, or none (RESET 0, 1, 2),
    rounded to ``value``'s dtype, as :func:`~spatial_layers.ops.neurons.apply_reset`."""
    dtype = value.dtype
    if RESET == 0:
        return (value - spike * threshold).to(dtype)
    elif RESET == 1:
        return (value - (value * spike).to(dtype)).to(dtype)
    else:
        return value


@triton.jit
def _load_constants(constants_ptr, channel, valid, size, FAMILY: tl.constexpr):
    """This program's per-neuron constants: beta, and per family alpha (cuba) or g, rho,
    c_a, c_b (adlif); rows the family does not have repeat beta (never read)."""
    beta = tl.load(constants_ptr + channel, mask=valid, other=0.0)
    decay = beta
    gain = beta
    coupling = beta
    jump = beta
    if FAMILY != 0:
        decay = tl.load(constants_ptr + size + channel, mask=valid, other=0.0)
    if FAMILY == 2:
        gain = decay
        decay = tl.load(constants_ptr + 2 * size + channel, mask=valid, other=0.0)
        coupling = tl.load(constants_ptr + 3 * size + channel, mask=valid, other=0.0)
        jump = tl.load(constants_ptr + 4 * size + channel, mask=valid, other=0.0)
    return beta, decay, gain, coupling, jump


@triton.jit
def _forward_step(
    current, membrane, second, previous, beta, decay, gain, coupling, jump, threshold,
    FAMILY: tl.constexpr, RESET: tl.constexpr, LATE: tl.constexpr,
):  # fmt: skip
    """One step of the family (:class:`~spatial_layers.ops.neurons.ForwardLoop`'s ops in
    its order). ``membrane``, ``second``: the state of step t - 1 (post-reset);
    ``previous``: the spike of step t - 1 (a late reset's). Returns the trace value (the one
    compared with the threshold), the spike, the post-reset membrane and the new second
    variable (I or w; ``second`` for the LIF)."""
    dtype = current.dtype
    threshold_cmp = threshold.to(dtype)
    drive = current
    if FAMILY == 1:  # I_t = x_t + alpha I_{t-1}
        product = (second * decay).to(dtype)
        second = (current + product).to(dtype)
        drive = second
    elif FAMILY == 2:  # g (x_t - w_{t-1})
        difference = (current - second).to(dtype)
        drive = (difference * gain).to(dtype)
    scaled = (membrane * beta).to(dtype)
    out = (drive + scaled).to(dtype)
    if LATE:
        out = _reset(out, previous, threshold, RESET)
        spike = (out > threshold_cmp).to(dtype)
        membrane = out
    else:
        spike = (out > threshold_cmp).to(dtype)
        membrane = _reset(out, spike, threshold, RESET)
    if FAMILY == 2:  # w_t = rho w_{t-1} + (c_a u_t + c_b S_t)
        kept = (second * decay).to(dtype)
        coupled = (membrane * coupling).to(dtype)
        jumped = (spike * jump).to(dtype)
        coupled = (coupled + jumped).to(dtype)
        second = (kept + coupled).to(dtype)
    return out, spike, membrane, second


@triton.jit
def _neuron_forward_kernel(
    currents_ptr, state_ptr, constants_ptr, spikes_ptr, traces_ptr, scalars_ptr,
    steps, neurons, size,
    FAMILY: tl.constexpr, RESET: tl.constexpr, LATE: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    valid = offsets < neurons
    channel = offsets % size
    threshold = tl.load(scalars_ptr)
    beta, decay, gain, coupling, jump = _load_constants(constants_ptr, channel, valid, size, FAMILY)
    membrane = tl.load(state_ptr + offsets, mask=valid, other=0.0)
    dtype = membrane.dtype
    second = membrane
    if FAMILY != 0:
        second = tl.load(state_ptr + neurons + offsets, mask=valid, other=0.0)
    previous = (membrane > threshold.to(dtype)).to(dtype)
    second_trace = traces_ptr + steps.to(tl.int64) * neurons
    for t in range(steps):
        at = t * neurons + offsets
        current = tl.load(currents_ptr + at, mask=valid, other=0.0)
        out, spike, membrane, second = _forward_step(
            current, membrane, second, previous, beta, decay, gain, coupling, jump,
            threshold, FAMILY, RESET, LATE,
        )  # fmt: skip
        previous = spike
        tl.store(traces_ptr + at, out, mask=valid)
        tl.store(spikes_ptr + at, spike, mask=valid)
        if FAMILY != 0:
            tl.store(second_trace + at, second, mask=valid)


@triton.jit
def _backward_step(
    membrane, earlier, earlier_spike, grad_s, outside_v, outside_second,
    next_v, next_i, next_w, beta, decay, gain, coupling, jump,
    threshold, half_alpha, slope_scale,
    FAMILY: tl.constexpr, RESET: tl.constexpr, LATE: tl.constexpr,
):  # fmt: skip
    """One step of :class:`~spatial_layers.ops.neurons.BackwardLoop`, in the work dtype.

    ``membrane``: the trace of step t; ``earlier``, ``earlier_spike``: the trace and the
    spike of step t - 1 (of the state before step 0); ``grad_s``: the gradient reaching
    the spike (output and feedback); ``outside_v``, ``outside_second``: the gradients
    reaching the traces; ``next_*``: the carries of step t + 1. Returns the input's
    gradient, G^v_t, G^w_t, the new current carry and U_{t-1} (post-reset)."""
    spike = (membrane > threshold).to(membrane.dtype)
    scaled = slope_scale * (membrane - threshold)
    slope = half_alpha / (1.0 + scaled * scaled)
    grad_u = beta * next_v
    grad_w = next_w * 0.0
    if FAMILY == 2:
        grad_w = decay * next_w - gain * next_v + outside_second
        grad_u += coupling * grad_w
        grad_s += jump * grad_w
    if LATE:
        grad_v = grad_u + slope * grad_s + outside_v
        if RESET == 1:
            grad_v = grad_v * (1.0 - earlier_spike)
        membrane_before = earlier
    else:
        if RESET == 1:
            grad_u = grad_u * (1.0 - spike)
        grad_v = grad_u + slope * grad_s + outside_v
        membrane_before = earlier
        if RESET == 0:
            membrane_before = earlier - threshold * earlier_spike
        elif RESET == 1:
            membrane_before = earlier - earlier * earlier_spike
    grad_x = grad_v
    if FAMILY == 1:
        grad_x = grad_v + decay * next_i + outside_second
        next_i = grad_x
    elif FAMILY == 2:
        grad_x = gain * grad_v
    return grad_x, grad_v, grad_w, next_i, membrane_before


@triton.jit
def _neuron_backward_kernel(
    traces_ptr, grad_spikes_ptr, grad_traces_ptr, state_ptr, constants_ptr, currents_ptr,
    grad_currents_ptr, grad_state_ptr, sums_ptr, scalars_ptr,
    steps, neurons, size,
    FAMILY: tl.constexpr, RESET: tl.constexpr, LATE: tl.constexpr,
    HAS_GRAD_SPIKES: tl.constexpr, HAS_GRAD_TRACES: tl.constexpr,
    NEED_CONSTANTS: tl.constexpr, HAS_CURRENTS: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    valid = offsets < neurons
    channel = offsets % size
    threshold = tl.load(scalars_ptr)
    half_alpha = tl.load(scalars_ptr + 1)
    slope_scale = tl.load(scalars_ptr + 2)
    work = threshold.dtype
    beta, decay, gain, coupling, jump = _load_constants(constants_ptr, channel, valid, size, FAMILY)
    first_membrane = tl.load(state_ptr + offsets, mask=valid, other=0.0).to(work)
    first_spike = (first_membrane > threshold).to(work)
    first_second = first_membrane
    if FAMILY != 0:
        first_second = tl.load(state_ptr + neurons + offsets, mask=valid, other=0.0).to(work)
    span = steps.to(tl.int64) * neurons
    zeros = tl.zeros([BLOCK], dtype=work)
    next_v = zeros
    next_i = zeros
    next_w = zeros
    sum_beta = zeros
    sum_second = zeros
    sum_decay = zeros
    sum_coupling = zeros
    sum_jump = zeros
    for back in range(steps):
        t = steps - 1 - back
        at = t * neurons + offsets
        has_past = valid & (t > 0)
        before = at - neurons
        membrane = tl.load(traces_ptr + at, mask=valid, other=0.0).to(work)
        earlier = tl.load(traces_ptr + before, mask=has_past, other=0.0).to(work)
        earlier_spike = tl.where(t > 0, (earlier > threshold).to(work), first_spike)
        earlier = tl.where(t > 0, earlier, first_membrane)
        if not LATE:  # the state before step 0 is post-reset already
            earlier_spike = tl.where(t > 0, earlier_spike, zeros)
        grad_s = zeros
        if HAS_GRAD_SPIKES:
            grad_s = tl.load(grad_spikes_ptr + at, mask=valid, other=0.0).to(work)
        outside_v = zeros
        outside_second = zeros
        if HAS_GRAD_TRACES:
            outside_v = tl.load(grad_traces_ptr + at, mask=valid, other=0.0).to(work)
            if FAMILY != 0:
                outside_second = tl.load(grad_traces_ptr + span + at, mask=valid, other=0.0)
                outside_second = outside_second.to(work)
        grad_x, grad_v, grad_w, next_i, membrane_before = _backward_step(
            membrane, earlier, earlier_spike, grad_s, outside_v, outside_second,
            next_v, next_i, next_w, beta, decay, gain, coupling, jump,
            threshold, half_alpha, slope_scale, FAMILY, RESET, LATE,
        )  # fmt: skip
        tl.store(grad_currents_ptr + at, grad_x.to(grad_currents_ptr.dtype.element_ty), mask=valid)
        if NEED_CONSTANTS:
            sum_beta += grad_v * membrane_before
            if FAMILY != 0:
                second_before = tl.load(traces_ptr + span + before, mask=has_past, other=0.0)
                second_before = tl.where(t > 0, second_before.to(work), first_second)
                if FAMILY == 1:
                    sum_second += grad_x * second_before
                else:
                    if HAS_CURRENTS:
                        current = tl.load(currents_ptr + at, mask=valid, other=0.0).to(work)
                        sum_second += grad_v * (current - second_before)
                    sum_decay += grad_w * second_before
                    spike = (membrane > threshold).to(work)
                    after = membrane
                    if RESET == 0:
                        after = membrane - threshold * spike
                    elif RESET == 1:
                        after = membrane - membrane * spike
                    sum_coupling += grad_w * after
                    sum_jump += grad_w * spike
        next_v = grad_v
        next_w = grad_w
    out_dtype = grad_state_ptr.dtype.element_ty
    tl.store(grad_state_ptr + offsets, (beta * next_v).to(out_dtype), mask=valid)
    if FAMILY == 1:
        tl.store(grad_state_ptr + neurons + offsets, (decay * next_i).to(out_dtype), mask=valid)
    elif FAMILY == 2:
        grad_w0 = decay * next_w - gain * next_v
        tl.store(grad_state_ptr + neurons + offsets, grad_w0.to(out_dtype), mask=valid)
    if NEED_CONSTANTS:
        tl.store(sums_ptr + offsets, sum_beta, mask=valid)
        if FAMILY != 0:
            tl.store(sums_ptr + neurons + offsets, sum_second, mask=valid)
        if FAMILY == 2:
            tl.store(sums_ptr + 2 * neurons + offsets, sum_decay, mask=valid)
            tl.store(sums_ptr + 3 * neurons + offsets, sum_coupling, mask=valid)
            tl.store(sums_ptr + 4 * neurons + offsets, sum_jump, mask=valid)


def flags(spec: Spec) -> dict:
    """The kernels' compile-time flags of a :class:`~spatial_layers.ops.neuron_spec.Spec`."""
    return {
        "FAMILY": FAMILIES.index(spec.family),
        "RESET": RESETS.index(spec.reset),
        "LATE": bool(spec.reset_delay),
    }


def _launch(kernel, *tensors: Tensor, steps: int, neurons: int, size: int, **flags) -> None:
    if steps and neurons:  # a grid of 0 programs is an error
        kernel[(triton.cdiv(neurons, BLOCK),)](
            *tensors, steps, neurons, size, **flags, BLOCK=BLOCK, num_warps=NUM_WARPS,
            enable_fp_fusion=False,
        )  # fmt: skip


def neuron_forward(
    currents: Tensor, state: Tensor, constants: Tensor, spec: Spec
) -> tuple[Tensor, Tensor]:
    """(spikes (T, ..., C), traces (S, T, ..., C)) of the family: see
    :func:`~spatial_layers.ops.neurons.neuron_forward_torch`."""
    currents = currents.contiguous()
    state = state.to(currents.dtype).contiguous()
    constants = constants.to(compute_dtype(currents)).contiguous()
    spikes = torch.empty_like(currents)
    traces = currents.new_empty((STATE_COUNT[spec.family], *currents.shape))
    size = currents.shape[-1]
    _launch(
        _neuron_forward_kernel,
        currents, state, constants, spikes, traces, constants_like(currents, spec.threshold),
        steps=currents.shape[0], neurons=currents[0].numel(), size=size, **flags(spec),
    )  # fmt: skip
    return spikes, traces


def neuron_backward(
    traces: Tensor,
    grad_spikes: Tensor | None,
    grad_traces: Tensor | None,
    state: Tensor,
    constants: Tensor,
    currents: Tensor | None,
    spec: Spec,
    need_constants: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of the currents, the initial state and the constants: see
    :func:`~spatial_layers.ops.neurons.neuron_backward_torch` (same recursion)."""
    traces = traces.contiguous()
    work = compute_dtype(traces)
    steps, size = traces.shape[1], traces.shape[-1]
    neurons = traces[0, 0].numel() if steps else state[0].numel()
    constants = constants.to(work).contiguous()
    state = state.to(traces.dtype).contiguous()
    rows = CONSTANT_COUNT[spec.family]
    grad_currents = torch.empty(traces.shape[1:], dtype=traces.dtype, device=traces.device)
    grad_state = torch.zeros(state.shape, dtype=work, device=traces.device)
    sums = torch.zeros(rows, neurons, dtype=work, device=traces.device)
    use_currents = currents is not None and spec.family == "adlif"
    scalars = constants_like(traces, spec.threshold, spec.alpha / 2, math.pi / 2 * spec.alpha)
    _launch(
        _neuron_backward_kernel,
        traces,
        traces if grad_spikes is None else grad_spikes.contiguous(),
        traces if grad_traces is None else grad_traces.contiguous(),
        state, constants, currents.contiguous() if use_currents else traces,
        grad_currents, grad_state, sums, scalars,
        steps=steps, neurons=neurons, size=size, **flags(spec),
        HAS_GRAD_SPIKES=grad_spikes is not None, HAS_GRAD_TRACES=grad_traces is not None,
        NEED_CONSTANTS=need_constants, HAS_CURRENTS=use_currents,
    )  # fmt: skip
    grad_constants = sums.view(rows, -1, size).sum(1)
    return grad_currents, grad_state, grad_constants
