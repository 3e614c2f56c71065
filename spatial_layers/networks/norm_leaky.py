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
    and ``torch.func`` transforms (``grad``, ``vmap``: the node is an autograd Function
    without a batching rule) get the plain composition.

    Args:
        norm: the batch norm (running statistics move as in its own forward).
        neuron: the neurons after it.
        currents: (T, B, C) synaptic currents.

    Returns:
        (T, B, C) spikes.
    """
    if (
        torch.compiler.is_compiling()
        or not getattr(neuron, "legacy", False)
        or torch._C._are_functorch_transforms_active()
    ):
        return neuron.forward_with_membrane(norm(currents))[0]
    return _NormLeaky.apply(currents, norm.weight, norm.bias, norm, neuron.params, neuron.backend)


class _NormLeaky(torch.autograd.Function):
    """Spikes of LIF(batch norm(y)); the backward recomputes the normalised currents and
    the membranes from y and runs the backward of each (LIF, then batch norm)."""

    @staticmethod
    def forward(ctx, y, weight, bias, norm: TimeBatchNorm, params: LeakyParameters, backend):
        # Batch statistics in training (and without running ones), else the running ones:
        # the choice nn.BatchNorm1d makes.
        batch_stats = norm.training or norm.running_mean is None
        stats = (None, None) if batch_stats else (norm.running_mean, norm.running_var)
        ctx.save_for_backward(y, weight, bias, *stats)
        params = LeakyParameters(*(float(value) for value in params))
        backend = resolve_backend(backend, y)
        ctx.constants = (batch_stats, norm.eps, params, backend)
        return ops.leaky_spikes_(norm(y).contiguous(), params.beta, params.threshold, backend)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: Tensor):
        y, weight, bias, mean, var = ctx.saved_tensors
        batch_stats, eps, params, backend = ctx.constants
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
