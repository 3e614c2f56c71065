"""Batching rules of spsnn's custom ops: ``torch.func.vmap`` (and ``jacrev``, ``jacfwd``'s
``vmap`` and per-sample gradients) through the fused neurons.

A custom op has no batching rule of its own, so ``vmap`` would fall back to a slow loop
with a warning. The rules here:

- the neuron ops (``spsnn::leaky_*``, ``spsnn::neuron_*``) are elementwise over neurons:
  the vmapped dimension is folded into the channels (the last dimension), the op runs
  once on (..., N * C), and the result is unfolded (per-neuron constants are folded
  alike, expanded where they are not batched, so each instance keeps its own constant
  gradient);
- the recurrent ops couple the channels: their forward folds the vmapped dimension into
  the batch when the kernel, bias and constants are shared, and every other case (the
  backward, whose kernel gradient sums over the batch) runs the op once per instance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor


def fold_channels(x: Tensor | None, dim: int | None, size: int) -> Tensor | None:
    """``x`` with the vmapped dimension ``dim`` (None: not batched, expanded) folded into
    its last dimension: (..., C) per instance -> (..., size * C)."""
    if x is None:
        return None
    if dim is None:
        x = x.unsqueeze(-2).expand(*x.shape[:-1], size, x.shape[-1])
    else:
        x = x.movedim(dim, -2)
    return x.reshape(*x.shape[:-2], size * x.shape[-1])


def unfold_channels(y: Tensor, size: int) -> Tensor:
    """Inverse of :func:`fold_channels`, the instances in dimension 0."""
    return y.reshape(*y.shape[:-1], size, y.shape[-1] // size).movedim(-2, 0)


def fold_batch(x: Tensor, dim: int | None, size: int) -> Tensor:
    """(T, B, C) per instance -> (T, size * B, C), the instances outermost in the batch."""
    x = x.unsqueeze(1).expand(x.shape[0], size, *x.shape[1:]) if dim is None else x.movedim(dim, 1)
    return x.reshape(x.shape[0], size * x.shape[2], *x.shape[3:])


def unfold_batch(y: Tensor, size: int) -> Tensor:
    return y.reshape(y.shape[0], size, y.shape[1] // size, *y.shape[2:]).movedim(1, 0)


def elementwise_rule(op: Callable, tensors: int, outputs: Sequence[bool]) -> Callable:
    """A rule for an op whose first ``tensors`` arguments are (..., C) tensors (or None)
    elementwise over C; ``outputs[i]``: output i is (..., C) (else not batched, e.g. an
    empty placeholder)."""

    def rule(info, in_dims, *args):
        size = info.batch_size
        folded = [fold_channels(a, d, size) for a, d in zip(args[:tensors], in_dims, strict=False)]
        results = op(*folded, *args[tensors:])
        unfolded = tuple(
            unfold_channels(y, size) if batched else y
            for y, batched in zip(results, outputs, strict=True)
        )
        return unfolded, tuple(0 if batched else None for batched in outputs)

    return rule


def loop_rule(op: Callable) -> Callable:
    """A rule that runs the op once per instance and stacks the results (the fallback
    ``vmap`` would take, without its warning)."""

    def rule(info, in_dims, *args):
        parts = []
        for index in range(info.batch_size):
            sliced = [
                a.select(d, index) if isinstance(a, Tensor) and d is not None else a
                for a, d in zip(args, in_dims, strict=True)
            ]
            parts.append(op(*sliced))
        results = tuple(torch.stack(list(outs)) for outs in zip(*parts, strict=True))
        return results, (0,) * len(results)

    return rule


def recurrent_forward_rule(op: Callable, shared: Sequence[int]) -> Callable:
    """The recurrent forward ops: fold into the batch when the arguments at ``shared``
    (kernel, bias, constants) are not batched; else one op per instance."""
    fallback = loop_rule(op)

    def rule(info, in_dims, *args):
        if any(in_dims[index] is not None for index in shared):
            return fallback(info, in_dims, *args)
        size = info.batch_size
        results = op(fold_batch(args[0], in_dims[0], size), *args[1:])
        spikes, traces = results
        traces = traces.movedim(0, -1)  # (S, T, B, C) -> (T, B, C, S) for the unfold
        unfolded = unfold_batch(traces, size).movedim(-1, 1)
        return (unfold_batch(spikes, size), unfolded), (0, 0)

    return rule


def register() -> None:
    """Registers the batching rule of every spsnn op (called once, by :mod:`spatial_layers.ops`)."""
    ops = torch.ops.spsnn
    library = torch.library
    library.register_vmap("spsnn::leaky_forward", _leaky_forward_rule(ops.leaky_forward.default))
    library.register_vmap(
        "spsnn::leaky_backward",
        elementwise_rule(ops.leaky_backward.default, 3, (True, True)),
    )
    library.register_vmap(
        "spsnn::neuron_forward",
        elementwise_rule(ops.neuron_forward.default, 3, (True, True)),
    )
    library.register_vmap(
        "spsnn::neuron_backward",
        elementwise_rule(ops.neuron_backward.default, 6, (True, True, True)),
    )
    library.register_vmap(
        "spsnn::recurrent_leaky_forward",
        _recurrent_leaky_forward_rule(ops.recurrent_leaky_forward.default),
    )
    library.register_vmap(
        "spsnn::recurrent_leaky_backward", loop_rule(ops.recurrent_leaky_backward.default)
    )
    library.register_vmap(
        "spsnn::recurrent_neuron_forward",
        recurrent_forward_rule(ops.recurrent_neuron_forward.default, (1, 2, 3)),
    )
    library.register_vmap(
        "spsnn::recurrent_neuron_backward", loop_rule(ops.recurrent_neuron_backward.default)
    )


def _leaky_forward_rule(op: Callable) -> Callable:
    """``leaky_forward``: elementwise; its spikes are a (0,) placeholder without spiking."""

    def rule(info, in_dims, currents, membrane, beta, threshold, alpha, spiking, backend):
        return elementwise_rule(op, 2, (spiking, True))(
            info, in_dims, currents, membrane, beta, threshold, alpha, spiking, backend
        )

    return rule


def _recurrent_leaky_forward_rule(op: Callable) -> Callable:
    """``recurrent_leaky_forward`` returns (spikes, membranes), both (T, B, C)."""
    fallback = loop_rule(op)

    def rule(info, in_dims, *args):
        if in_dims[1] is not None or in_dims[2] is not None:
            return fallback(info, in_dims, *args)
        size = info.batch_size
        spikes, membranes = op(fold_batch(args[0], in_dims[0], size), *args[1:])
        return (unfold_batch(spikes, size), unfold_batch(membranes, size)), (0, 0)

    return rule
