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

import functools

import torch
from torch import Tensor

from spatial_layers.ops import scan
from spatial_layers.ops.leaky import leaky_step_into
from spatial_layers.surrogate import arctan_slope
from spatial_layers.vmap_rules import fold_steps, per_slice


def _recurrent_forward_torch(
    currents: Tensor, kernel: Tensor, bias: Tensor | None, beta: float, threshold: float
) -> tuple[Tensor, Tensor]:
    """(spikes, membranes), both (T, B, C), of (T, B, C) currents: a loop over T in
    preallocated memory, bit-equal to ``delayed_step`` and ``leaky_step`` in a loop."""
    steps, batch, size = currents.shape
    taps = kernel.shape[-1]
    weights_t = kernel.flatten(1).t()  # (C * K, C): F.linear's operand in delayed_step
    spikes, membranes = torch.empty_like(currents), torch.empty_like(currents)
    # history[b, j, k] = S_{t-1-k}[b, j], laid out as delayed_step's (B, C, K) history.
    history = currents.new_zeros(batch, size, taps)
    next_history = torch.empty_like(history)
    feedback, drive = currents.new_empty(batch, size), currents.new_empty(batch, size)
    scratch = torch.empty_like(drive), torch.empty_like(drive, dtype=torch.bool)
    membrane = reset = currents.new_zeros(batch, size)
    for t in range(steps):
        # F.linear(history.flatten(1), kernel.flatten(1), bias) is addmm (mm without bias).
        if bias is None:
            torch.mm(history.flatten(1), weights_t, out=feedback)
        else:
            torch.addmm(bias, history.flatten(1), weights_t, out=feedback)
        torch.add(currents[t], feedback, out=drive)
        out = membranes[t]
        reset = leaky_step_into(drive, membrane, reset, beta, threshold, out, spikes[t], scratch)
        membrane = out
        next_history[..., 0] = reset
        next_history[..., 1:] = history[..., :-1]
        history, next_history = next_history, history
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
    steps, batch, size = membranes.shape
    taps = kernel.shape[-1]
    slopes = arctan_slope(membranes - threshold, alpha)
    # Rows (i, k), to multiply the (B, C * K) history of future gradients below.
    weights = kernel.permute(0, 2, 1).reshape(size * taps, size)
    grads = torch.empty_like(membranes)
    # future[b, i, k] = a_{t+1+k}[b, i] (zero past the last step).
    future = membranes.new_zeros(batch, size, taps)
    next_future = torch.empty_like(future)
    spike_grad = membranes.new_empty(batch, size)
    carried = membranes.new_zeros(batch, size)
    for t in range(steps - 1, -1, -1):
        torch.mm(future.flatten(1), weights, out=spike_grad)
        if grad_spikes is not None:
            spike_grad.add_(grad_spikes[t])
        grad = torch.mul(spike_grad, slopes[t], out=grads[t])
        if grad_membranes is not None:
            grad.add_(grad_membranes[t])
        carried = grad.add_(carried, alpha=beta)
        next_future[..., 0] = grad
        next_future[..., 1:] = future[..., :-1]
        future, next_future = next_future, future
    return grads


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


# Batching rules: the forward folds vmapped currents into the batch when the kernel and
# bias are shared; anything else (a vmapped kernel, and every backward, whose kernel
# gradient sums over the batch) runs once per vmapped slice.
def _folded_forward(apply, info, in_dims, currents, kernel, bias, *constants):
    """``apply`` (the op or :class:`_RecurrentForward`) on every vmapped slice."""
    if in_dims[1] is None and in_dims[2] is None:
        size = info.batch_size
        outputs = apply(fold_steps(currents, in_dims[0], size), kernel, bias, *constants)
        return tuple(out.unflatten(1, (size, -1)) for out in outputs), (1, 1)

    def one(currents, kernel, bias):
        return apply(currents, kernel, bias, *constants)

    return per_slice(one, info, in_dims[:3], currents, kernel, bias)


def _recurrent_backward_vmap(
    info, in_dims, membranes, kernel, grad_spikes, grad_membranes, *constants
):
    def one(*tensors):
        return torch.ops.spsnn.recurrent_leaky_backward(*tensors, *constants)

    return per_slice(one, info, in_dims[:4], membranes, kernel, grad_spikes, grad_membranes)


torch.library.register_vmap(
    "spsnn::recurrent_leaky_forward",
    functools.partial(_folded_forward, torch.ops.spsnn.recurrent_leaky_forward),
)
torch.library.register_vmap("spsnn::recurrent_leaky_backward", _recurrent_backward_vmap)


class _RecurrentForward(torch.autograd.Function):
    """``spsnn::recurrent_leaky_forward`` with its registered autograd, as an autograd
    Function, for torch.func transforms (see :class:`~spatial_layers.ops.leaky._LeakyForward`)."""

    @staticmethod
    def forward(currents, kernel, bias, beta, threshold, alpha, backend):
        return torch.ops.spsnn.recurrent_leaky_forward(
            currents, kernel, bias, beta, threshold, alpha, backend
        )

    setup_context = staticmethod(_setup_recurrent_context)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes, grad_membranes):
        return _recurrent_forward_grad(ctx, grad_spikes, grad_membranes)

    @staticmethod
    def vmap(info, in_dims, *args):
        return _folded_forward(_RecurrentForward.apply, info, in_dims, *args)


def recurrent_leaky_forward(
    currents: Tensor,
    kernel: Tensor,
    bias: Tensor | None,
    beta: float,
    threshold: float,
    alpha: float,
    backend: str,
) -> tuple[Tensor, Tensor]:
    """``torch.ops.spsnn.recurrent_leaky_forward`` (see :func:`_recurrent_forward`), also
    under ``torch.func`` transforms, and as a scan inside
    :func:`~spatial_layers.ops.scan.loops_as_scan`; (T, B, C) currents -> (T, B, C)
    spikes and membranes."""
    if scan.active():
        return scan.recurrent_leaky_forward_scan(currents, kernel, bias, beta, threshold)
    args = (currents, kernel, bias, beta, threshold, alpha, backend)
    if torch._C._are_functorch_transforms_active():
        return _RecurrentForward.apply(*args)
    return torch.ops.spsnn.recurrent_leaky_forward(*args)
