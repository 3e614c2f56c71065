"""Batch norm over time and the multi-step LIF after it, in one node that saves only the
norm's input.

Unfused, a training step keeps two (T, B, C) float tensors per hidden layer for the
backward pass: the batch norm's input and the LIF's membrane trace (250 MiB each at
T = 1000, batch 256, 256 neurons). The membranes are a cheap function of the input,
so :func:`normalized_spikes` keeps the input only and recomputes the rest in its
backward, with the same ops: the same forward bits, the same gradient bits. The
membrane trace is written over the normalised currents
(:func:`~spatial_layers.ops.leaky_spikes_`), so neither direction makes a third
(T, B, C) float tensor.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spatial_layers import ops
from spatial_layers.neurons import LeakyParameters, NeuronBase, resolve_backend
from spatial_layers.vmap_rules import per_slice


class TimeBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over channels of a (T, B, C) sequence, statistics shared by all steps.

    As DCLS-delays normalises: the (T, B) axes are flattened into one batch.
    """

    def forward(self, x: Tensor) -> Tensor:
        steps, batch, channels = x.shape
        return super().forward(x.reshape(steps * batch, channels)).reshape(steps, batch, channels)


def normalized_spikes(norm: TimeBatchNorm, neuron: NeuronBase, currents: Tensor) -> Tensor:
    """``neuron(norm(currents))``, bit for bit, saving only ``currents`` for backward.

    The fused node serves a LIF with one constant ``beta`` and the default reset
    (``Leaky.legacy``); other neurons, ``torch.compile`` (the compiler chooses what to save)
    and the loops of :func:`~spatial_layers.ops.scan.loops_as_scan` (export to ONNX) get
    the plain composition.

    Args:
        norm: the batch norm (running statistics move as in its own forward).
        neuron: the neurons after it.
        currents: (T, B, C) synaptic currents.

    Returns:
        (T, B, C) spikes.
    """
    if torch.compiler.is_compiling() or ops.scan.active() or not getattr(neuron, "legacy", False):
        return neuron.forward_with_membrane(norm(currents))[0]
    return _NormLeaky.apply(currents, norm.weight, norm.bias, norm, neuron.params, neuron.backend)


class _NormLeaky(torch.autograd.Function):
    """Spikes of LIF(batch norm(y)); the backward recomputes the normalised currents and
    the membranes from y and runs the backward of each (LIF, then batch norm)."""

    @staticmethod
    def forward(y, weight, bias, norm: TimeBatchNorm, params: LeakyParameters, backend):
        params = LeakyParameters(*(float(value) for value in params))
        backend = resolve_backend(backend, y)
        return ops.leaky_spikes_(norm(y).contiguous(), params.beta, params.threshold, backend)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        y, weight, bias, norm, params, backend = inputs
        # Batch statistics in training (and without running ones), else the running ones:
        # the choice nn.BatchNorm1d makes (the forward just made it with these settings).
        batch_stats = norm.training or norm.running_mean is None
        stats = (None, None) if batch_stats else (norm.running_mean, norm.running_var)
        ctx.save_for_backward(y, weight, bias, *stats)
        params = LeakyParameters(*(float(value) for value in params))
        ctx.constants = (batch_stats, norm.eps, params, resolve_backend(backend, y))

    @staticmethod
    def vmap(info, in_dims, y, weight, bias, norm, params, backend):
        # Batch statistics couple all samples of a slice: one call per vmapped slice.
        def one(y, weight, bias):
            return _NormLeaky.apply(y, weight, bias, norm, params, backend)

        return per_slice(one, info, in_dims[:3], y, weight, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: Tensor):
        y, weight, bias, mean, var = ctx.saved_tensors
        batch_stats, eps, params, backend = ctx.constants
        if torch._C._are_functorch_transforms_active():
            # jacrev vmaps this backward, vmap(grad) runs it on batched tensors: aten's
            # batch-norm ops have no batching rule and the in-place LIF refuses them.
            grads = _composite_backward(
                y, weight, bias, mean, var, grad_spikes, eps, params, backend
            )
            return (
                *(g if n else None for g, n in zip(grads, ctx.needs_input_grad[:3], strict=True)),
                None,
                None,
                None,
            )
        flat = y.reshape(-1, y.shape[-1])
        # The op nn.BatchNorm1d's forward runs (F.batch_norm), without moving the
        # running statistics: the same currents and the statistics its backward needs.
        currents, *saved, impl = torch._batch_norm_impl_index(
            flat, weight, bias, mean, var, batch_stats, 0.0, eps, torch.backends.cudnn.enabled
        )
        membranes = currents.view(y.shape)
        ops.leaky_spikes_(membranes, params.beta, params.threshold, backend)
        grad_currents = ops.leaky_backward(membranes, grad_spikes, None, *params, backend)[0]
        del currents, membranes
        save_mean, save_var, reserve = saved
        grad_y, grad_weight, grad_bias = torch.ops.aten._batch_norm_impl_index_backward(
            impl, flat, grad_currents.view(flat.shape), weight, mean, var,
            save_mean, save_var, batch_stats, eps, list(ctx.needs_input_grad[:3]), reserve,
        )  # fmt: skip
        grad_y = None if grad_y is None else grad_y.view(y.shape)
        return grad_y, grad_weight, grad_bias, None, None, None


def _composite_backward(y, weight, bias, mean, var, grad_spikes, eps, params, backend):
    """The gradients of :class:`_NormLeaky` (y, weight, bias) in ops every ``torch.func``
    transform runs: the normalisation of :func:`batch_norm_grads`, the LIF ops."""
    flat = y.reshape(-1, y.shape[-1])
    batch_stats = mean is None
    mean, invstd = batch_norm_statistics(flat, mean, var, eps)
    currents = (flat - mean) * invstd
    currents = currents if weight is None else currents * weight
    currents = currents if bias is None else currents + bias
    currents = currents.reshape(y.shape)
    membranes = ops.leaky_forward(
        currents, currents.new_zeros(currents.shape[1:]), *params, True, backend
    )[1]
    grad_currents = ops.leaky_backward(membranes, grad_spikes, None, *params, backend)[0]
    grad_flat = grad_currents.reshape(flat.shape)
    grad_y, grad_weight, grad_bias = batch_norm_grads(
        flat, grad_flat, weight, mean, invstd, batch_stats
    )
    return grad_y.reshape(y.shape), grad_weight, grad_bias


def batch_norm_statistics(
    x: Tensor, mean: Tensor | None, var: Tensor | None, eps: float
) -> tuple[Tensor, Tensor]:
    """(C,) mean and 1 / sqrt(var + eps) of a batch norm on (N, C) ``x``: the given
    running ones, or (``mean`` None) those of ``x`` (biased variance), as
    ``F.batch_norm`` uses them."""
    if mean is None:
        mean, var = x.mean(0), x.var(0, correction=0)
    return mean, torch.rsqrt(var + eps)


def batch_norm_grads(
    x: Tensor, grad: Tensor, weight: Tensor | None, mean: Tensor, invstd: Tensor, batch_stats: bool
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Gradients of ``F.batch_norm(x, ..., weight, bias)`` w.r.t. x, weight and bias,
    in composite torch ops (any ``torch.func`` transform runs them).

    With :math:`s` = ``invstd``, :math:`\hat x = (x - \mu)\, s` and
    :math:`g = w\, \partial L/\partial y`, statistics of the batch (``batch_stats``) give
    :math:`\partial L/\partial x = s\, (g - \bar g - \hat x\, \overline{g \hat x})`,
    fixed (running) ones :math:`s\, g`; bars are means over the N rows.

    Args:
        x: (N, C) input.
        grad: (N, C) gradient of the output.
        weight: (C,) scale, or None (1).
        mean: (C,) mean, from :func:`batch_norm_statistics`.
        invstd: (C,) inverse standard deviation, from :func:`batch_norm_statistics`.
        batch_stats: whether they are the statistics of ``x``.

    Returns:
        (N, C), (C,) and (C,) gradients of x, weight and bias.
    """
    normalized = (x - mean) * invstd
    grad_weight = (grad * normalized).sum(0)
    scaled = grad if weight is None else grad * weight
    if batch_stats:
        grad_x = invstd * (scaled - scaled.mean(0) - normalized * (scaled * normalized).mean(0))
    else:
        grad_x = scaled * invstd
    return grad_x, grad_weight, grad.sum(0)
