r"""The recurrent LIF loop as one autograd node: a custom op per direction.

The recursion of :func:`~spatial_layers.neurons.recurrent_leaky` over a (T, B, C)
sequence, with a (C, C, K) recurrent kernel :math:`W` and an optional (C,) bias :math:`b`:

.. math::
    F_t[i] = \sum_j \sum_k W[i, j, k]\, S_{t-1-k}[j] + b_i, \qquad
    U_t = \beta U_{t-1} + (I_t + F_t) - \theta\, S_{t-1}, \qquad
    S_t = H(U_t - \theta)

(:math:`U_{-1} = 0`, no spike before step 0; the reset :math:`S_{t-1}` is detached, as in
snnTorch). The forward of the torch backend runs the operations of
:func:`~spatial_layers.functional.delayed_step` and
:func:`~spatial_layers.neurons.leaky_step` in the same order on the same layouts, so it
is bit-equal to them; the Triton backend (:mod:`spatial_layers.ops.triton_recurrent`) sums
the feedback in another order, so it is bit-equal where those sums are exact and equal
to float rounding otherwise. Only the membrane trace (spikes are :math:`U_t > \theta`)
and the kernel are saved for the backward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spatial_layers.ops.leaky import leaky_step_into
from spatial_layers.ops.neuron_spec import STATE_COUNT, Spec, check_spec
from spatial_layers.ops.neurons import BackwardLoop, ForwardLoop
from spatial_layers.surrogate import arctan_slope


class _DelayedFeedback:
    """The input of a recurrent torch loop: step t's currents plus its own spikes of steps
    t - 1 - k through ``kernel[:, :, k]`` (and the bias), in preallocated memory.

    ``history[b, j, k] = S_{t-1-k}[b, j]``, laid out as ``delayed_step``'s (B, C, K)
    history, so the feedback is ``F.linear(history.flatten(1), kernel.flatten(1), bias)``:
    addmm (mm without bias), bit-equal to ``delayed_step`` in a loop.
    """

    def __init__(self, currents: Tensor, kernel: Tensor, bias: Tensor | None) -> None:
        _, batch, size = currents.shape
        self.currents, self.bias = currents, bias
        self.weights_t = kernel.flatten(1).t()  # (C * K, C): F.linear's operand
        self.history = currents.new_zeros(batch, size, kernel.shape[-1])
        self.next_history = torch.empty_like(self.history)
        self.feedback = currents.new_empty(batch, size)
        self.drive = currents.new_empty(batch, size)

    def at(self, t: int) -> Tensor:
        """The (B, C) drive of step t (a buffer overwritten by the next call)."""
        flat = self.history.flatten(1)
        if self.bias is None:
            torch.mm(flat, self.weights_t, out=self.feedback)
        else:
            torch.addmm(self.bias, flat, self.weights_t, out=self.feedback)
        return torch.add(self.currents[t], self.feedback, out=self.drive)

    def push(self, spikes: Tensor) -> None:
        """Records step t's (B, C) spikes as the newest history entry."""
        self.next_history[..., 0] = spikes
        self.next_history[..., 1:] = self.history[..., :-1]
        self.history, self.next_history = self.next_history, self.history


def _recurrent_forward_torch(
    currents: Tensor, kernel: Tensor, bias: Tensor | None, beta: float, threshold: float
) -> tuple[Tensor, Tensor]:
    """(spikes, membranes), both (T, B, C), of (T, B, C) currents: a loop over T in
    preallocated memory, bit-equal to ``delayed_step`` and ``leaky_step`` in a loop."""
    feedback = _DelayedFeedback(currents, kernel, bias)
    spikes, membranes = torch.empty_like(currents), torch.empty_like(currents)
    scratch = torch.empty_like(feedback.drive), torch.empty_like(feedback.drive, dtype=torch.bool)
    membrane = reset = currents.new_zeros(currents.shape[1:])
    for t in range(currents.shape[0]):
        out = membranes[t]
        reset = leaky_step_into(
            feedback.at(t), membrane, reset, beta, threshold, out, spikes[t], scratch
        )
        membrane = out
        feedback.push(reset)
    return spikes, membranes


def _recurrent_backward_torch(
    membranes: Tensor,
    kernel: Tensor,
    grad_spikes: Tensor | None,
    grad_membranes: Tensor | None,
    params: tuple[float, float, float],
) -> Tensor:
    r"""(T, B, C) gradients :math:`a_t = \partial L / \partial U_t` (= those of the currents).

    Backwards in time, with :math:`g^S, g^U` the gradients reaching the outputs (None: none)
    and :math:`\sigma'` the arctan surrogate of :class:`~spatial_layers.neurons.ArctanSpike`,

    .. math::
        \partial L / \partial S_t[j] = g^S_t[j] + \sum_k \sum_i W[i, j, k]\, a_{t+1+k}[i],
        \qquad a_t = g^U_t + \sigma'(U_t - \theta)\, \partial L / \partial S_t + \beta a_{t+1}
    """
    beta, threshold, alpha = params
    slopes = arctan_slope(membranes - threshold, alpha)
    grads = torch.empty_like(membranes)
    feedback = _FeedbackGradients(kernel, membranes[0])
    carried = membranes.new_zeros(membranes.shape[1:])
    for t in range(membranes.shape[0] - 1, -1, -1):
        spike_grad = feedback.at()
        if grad_spikes is not None:
            spike_grad.add_(grad_spikes[t])
        grad = torch.mul(spike_grad, slopes[t], out=grads[t])
        if grad_membranes is not None:
            grad.add_(grad_membranes[t])
        carried = grad.add_(carried, alpha=beta)
        feedback.push(grad)
    return grads


class _FeedbackGradients:
    r"""The part of :math:`\partial L / \partial S_t[j]` that flows back through the
    recurrence, :math:`\sum_k \sum_i W[i, j, k]\, a_{t+1+k}[i]`, for a loop backwards in
    time, in preallocated memory of ``like``'s (B, C) shape and dtype.

    ``future[b, i, k] = a_{t+1+k}[b, i]`` (zero past the last step) times the kernel's
    rows (i, k) is one mm per step.
    """

    def __init__(self, kernel: Tensor, like: Tensor) -> None:
        size, taps = kernel.shape[0], kernel.shape[-1]
        self.weights = kernel.permute(0, 2, 1).reshape(size * taps, size).to(like.dtype)
        self.future = like.new_zeros(*like.shape, taps)
        self.next_future = torch.empty_like(self.future)
        self.spike_grad = torch.empty_like(like)

    def at(self) -> Tensor:
        """The (B, C) gradient of step t's spikes through the recurrence (a buffer
        overwritten by the next call)."""
        return torch.mm(self.future.flatten(1), self.weights, out=self.spike_grad)

    def push(self, grad: Tensor) -> None:
        """Records step t's (B, C) gradient of the drive as the newest future entry."""
        self.next_future[..., 0] = grad
        self.next_future[..., 1:] = self.future[..., :-1]
        self.future, self.next_future = self.next_future, self.future


def _parameter_grads(
    grads: Tensor, membranes: Tensor, threshold: float, taps: int
) -> tuple[Tensor, Tensor]:
    """Gradients of the (C, C, K) kernel and (C,) bias from the (T, B, C) gradients a_t:
    dW[i, j, k] = sum over t, b of a_t[i] S_{t-1-k}[j]; db = sum over t, b of a_t."""
    steps, _, size = grads.shape
    spikes = (membranes > threshold).to(grads.dtype)
    grad_kernel = grads.new_zeros(size, size, taps)
    for k in range(min(taps, steps - 1)):
        late, early = grads[1 + k :].flatten(0, 1), spikes[: steps - 1 - k].flatten(0, 1)
        grad_kernel[:, :, k] = late.t() @ early
    return grad_kernel, grads.sum((0, 1))


@torch.library.custom_op("spsnn::recurrent_leaky_forward", mutates_args=())
def _recurrent_forward(
    currents: Tensor,
    kernel: Tensor,
    bias: Tensor | None,
    beta: float,
    threshold: float,
    alpha: float,
    backend: str,
) -> tuple[Tensor, Tensor]:
    """(spikes, membranes), both (T, B, C), of the recurrent LIF on ``backend``.

    A custom operator, so that ``torch.compile`` and CUDA graphs see the whole loop as
    one opaque op. ``alpha`` is only read by the backward. Contiguous outputs.
    """
    currents, kernel = currents.contiguous(), kernel.contiguous()
    if backend == "triton":
        from spatial_layers.ops import triton_recurrent

        return triton_recurrent.recurrent_forward(currents, kernel, bias, beta, threshold)
    return _recurrent_forward_torch(currents, kernel, bias, beta, threshold)


@_recurrent_forward.register_fake
def _(currents, kernel, bias, beta, threshold, alpha, backend):
    return currents.new_empty(currents.shape), currents.new_empty(currents.shape)


@torch.library.custom_op("spsnn::recurrent_leaky_backward", mutates_args=())
def _recurrent_backward(
    membranes: Tensor,
    kernel: Tensor,
    grad_spikes: Tensor | None,
    grad_membranes: Tensor | None,
    beta: float,
    threshold: float,
    alpha: float,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of the (T, B, C) currents, (C, C, K) kernel and (C,) bias.

    A None gradient is an output that got none. The time loop runs on ``backend``; the
    kernel and bias gradients are reductions of its result, in torch.
    """
    kernel = kernel.contiguous()
    grad_spikes = None if grad_spikes is None else grad_spikes.contiguous()
    grad_membranes = None if grad_membranes is None else grad_membranes.contiguous()
    params = (beta, threshold, alpha)
    if backend == "triton":
        from spatial_layers.ops import triton_recurrent

        grads = triton_recurrent.recurrent_backward(
            membranes, kernel, grad_spikes, grad_membranes, params
        )
    else:
        grads = _recurrent_backward_torch(membranes, kernel, grad_spikes, grad_membranes, params)
    return grads, *_parameter_grads(grads, membranes, threshold, kernel.shape[-1])


@_recurrent_backward.register_fake
def _(membranes, kernel, grad_spikes, grad_membranes, beta, threshold, alpha, backend):
    return (
        membranes.new_empty(membranes.shape),
        kernel.new_empty(kernel.shape),
        kernel.new_empty(kernel.shape[:1]),
    )


def _setup_recurrent_context(ctx, inputs, output) -> None:
    _currents, kernel, bias, beta, threshold, alpha, backend = inputs
    ctx.save_for_backward(output[1], kernel)
    ctx.has_bias = bias is not None
    ctx.constants = (beta, threshold, alpha, backend)
    # An output without a gradient (the membrane trace, mostly) arrives as None.
    ctx.set_materialize_grads(False)


def _recurrent_forward_grad(ctx, grad_spikes: Tensor | None, grad_membranes: Tensor | None):
    membranes, kernel = ctx.saved_tensors
    grad_currents, grad_kernel, grad_bias = torch.ops.spsnn.recurrent_leaky_backward(
        membranes, kernel, grad_spikes, grad_membranes, *ctx.constants
    )
    grad_bias = grad_bias if ctx.has_bias else None
    return grad_currents, grad_kernel, grad_bias, None, None, None, None


_recurrent_forward.register_autograd(
    _recurrent_forward_grad, setup_context=_setup_recurrent_context
)


# --------------------------------------------------------------- every neuron family
def _recurrent_neuron_forward_torch(
    currents: Tensor, kernel: Tensor, bias: Tensor | None, constants: Tensor, spec: Spec
) -> tuple[Tensor, Tensor]:
    """(spikes (T, B, C), traces (S, T, B, C)) of a neuron family (:mod:`spatial_layers.ops.
    neurons`) whose input adds its own delayed spikes: the feedback of
    :func:`_recurrent_forward_torch` (the same ops on the same layouts) into the family's
    :class:`~spatial_layers.ops.neurons.ForwardLoop`, from zero state."""
    state = currents.new_zeros(STATE_COUNT[spec.family], *currents.shape[1:])
    loop = ForwardLoop(currents, state, constants, spec)
    feedback = _DelayedFeedback(currents, kernel, bias)
    for t in range(currents.shape[0]):
        feedback.push(loop.step(t, feedback.at(t)))
    return loop.spikes, loop.traces


def _recurrent_neuron_backward_torch(
    traces: Tensor,
    kernel: Tensor,
    grad_spikes: Tensor | None,
    grad_traces: Tensor | None,
    constants: Tensor,
    currents: Tensor | None,
    spec: Spec,
    need_constants: bool,
) -> tuple[Tensor, Tensor]:
    r"""(T, B, C) gradients of the input currents (= of the drive x_t + F_t) and (K, C) of
    the constants: the family's :class:`~spatial_layers.ops.neurons.BackwardLoop` with the
    spikes' gradient augmented by the feedback,
    :math:`\sum_k \sum_i W[i, j, k]\, G^x_{t+1+k}[i]` (as :func:`_recurrent_backward_torch`)."""
    state = traces.new_zeros(STATE_COUNT[spec.family], *traces.shape[2:])
    loop = BackwardLoop(
        traces, grad_spikes, grad_traces, state, constants, currents, spec, need_constants
    )
    feedback = _FeedbackGradients(kernel, loop.zeros)
    for t in range(traces.shape[1] - 1, -1, -1):
        feedback.push(loop.step(t, feedback.at()))
    grads, _, grad_constants = loop.finish()
    return grads, grad_constants


@torch.library.custom_op("spsnn::recurrent_neuron_forward", mutates_args=())
def _recurrent_neuron_forward(
    currents: Tensor,
    kernel: Tensor,
    bias: Tensor | None,
    constants: Tensor,
    family: str,
    threshold: float,
    alpha: float,
    reset: str,
    reset_delay: bool,
    backend: str,
) -> tuple[Tensor, Tensor]:
    """(spikes (T, B, C), traces (S, T, B, C)) of a neuron family with delayed recurrence,
    from zero state (the traces as :func:`spatial_layers.ops.neurons._neuron_forward`'s).
    A custom operator: one opaque op for ``torch.compile`` and CUDA graphs."""
    spec = Spec(family, threshold, alpha, reset, reset_delay)
    state = currents.new_zeros(STATE_COUNT[family], *currents.shape[1:])
    check_spec(spec, constants, state, currents)
    currents, kernel = currents.contiguous(), kernel.contiguous()
    constants = constants.contiguous()
    if backend == "triton":
        from spatial_layers.ops import triton_recurrent

        return triton_recurrent.recurrent_neuron_forward(currents, kernel, bias, constants, spec)
    return _recurrent_neuron_forward_torch(currents, kernel, bias, constants, spec)


@_recurrent_neuron_forward.register_fake
def _(currents, kernel, bias, constants, family, *args):
    traces = currents.new_empty((STATE_COUNT[family], *currents.shape))
    return currents.new_empty(currents.shape), traces


@torch.library.custom_op("spsnn::recurrent_neuron_backward", mutates_args=())
def _recurrent_neuron_backward(
    traces: Tensor,
    kernel: Tensor,
    grad_spikes: Tensor | None,
    grad_traces: Tensor | None,
    constants: Tensor,
    currents: Tensor | None,
    bias: Tensor | None,
    family: str,
    threshold: float,
    alpha: float,
    reset: str,
    reset_delay: bool,
    need_constants: bool,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of the (T, B, C) currents, (C, C, K) kernel, (C,) bias and (K, C)
    constants (zeros without ``need_constants``). The time loop runs on ``backend``; the
    kernel and bias gradients are reductions of its result, in torch. ``currents`` (and
    ``bias``) are given only for adlif's g, whose gradient reads the whole input,
    currents plus feedback (recomputed here from the spikes)."""
    spec = Spec(family, threshold, alpha, reset, reset_delay)
    kernel = kernel.contiguous()
    traces = traces.contiguous()
    if currents is not None:
        currents = currents + _feedback_currents(traces[0] > threshold, kernel, bias)
    grad_spikes = None if grad_spikes is None else grad_spikes.contiguous()
    grad_traces = None if grad_traces is None else grad_traces.contiguous()
    if backend == "triton":
        from spatial_layers.ops import triton_recurrent

        grads, grad_constants = triton_recurrent.recurrent_neuron_backward(
            traces, kernel, grad_spikes, grad_traces, constants, currents, spec, need_constants
        )
    else:
        grads, grad_constants = _recurrent_neuron_backward_torch(
            traces, kernel, grad_spikes, grad_traces, constants, currents, spec, need_constants
        )
    grad_kernel, grad_bias = _parameter_grads(
        grads, traces[0].to(grads.dtype), threshold, kernel.shape[-1]
    )
    return (
        grads.to(traces.dtype),
        grad_kernel.to(kernel.dtype),
        grad_bias.to(kernel.dtype),
        grad_constants.to(constants.dtype),
    )


def _feedback_currents(fired: Tensor, kernel: Tensor, bias: Tensor | None) -> Tensor:
    """The (T, B, C) feedback F_t = sum_k kernel[:, :, k] S_{t-1-k} (+ bias) of (T, B, C)
    spikes ``fired`` (bool): the recurrent input the forward added to the currents."""
    spikes = fired.to(kernel.dtype)
    steps = spikes.shape[0]
    feedback = torch.zeros_like(spikes)
    for k in range(min(kernel.shape[-1], steps - 1)):
        feedback[1 + k :] += spikes[: steps - 1 - k] @ kernel[:, :, k].t()
    return feedback if bias is None else feedback + bias


@_recurrent_neuron_backward.register_fake
def _(traces, kernel, grad_spikes, grad_traces, constants, *args):
    return (
        traces.new_empty(traces.shape[1:]),
        kernel.new_empty(kernel.shape),
        kernel.new_empty(kernel.shape[:1]),
        constants.new_empty(constants.shape),
    )


def _setup_recurrent_neuron_context(ctx, inputs, output) -> None:
    currents, kernel, bias, constants, family, *static, backend = inputs
    need_constants = bool(ctx.needs_input_grad[3])
    keep = family == "adlif" and need_constants
    kept = (currents, bias) if keep else (None, None)
    ctx.save_for_backward(output[1], kernel, constants, *kept)
    ctx.has_bias = bias is not None
    ctx.constants = (family, *static, need_constants, backend)
    ctx.set_materialize_grads(False)


def _recurrent_neuron_forward_grad(ctx, grad_spikes: Tensor | None, grad_traces: Tensor | None):
    traces, kernel, constants, currents, bias = ctx.saved_tensors
    family, threshold, alpha, reset, reset_delay, need_constants, backend = ctx.constants
    grads = torch.ops.spsnn.recurrent_neuron_backward(
        traces, kernel, grad_spikes, grad_traces, constants, currents, bias,
        family, threshold, alpha, reset, reset_delay, need_constants, backend,
    )  # fmt: skip
    grad_currents, grad_kernel, grad_bias, grad_constants = grads
    return (
        grad_currents,
        grad_kernel,
        grad_bias if ctx.has_bias else None,
        grad_constants if need_constants else None,
        *(None,) * 6,
    )


_recurrent_neuron_forward.register_autograd(
    _recurrent_neuron_forward_grad, setup_context=_setup_recurrent_neuron_context
)
