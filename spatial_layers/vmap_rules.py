"""Batching rules of spsnn's autograd Functions for ``torch.vmap`` (and ``jacrev``, which
vmaps the backward pass).

Each Function of the package (:mod:`~spatial_layers.kernels`,
:mod:`~spatial_layers.geometry`, :mod:`~spatial_layers.functional`,
:mod:`~spatial_layers.spike_dropout`, :mod:`~spatial_layers.networks.norm_leaky`) has a
``setup_context`` (what ``torch.func`` transforms need) and a ``vmap`` staticmethod built
from the two rules here: a Function that is elementwise over leading dimensions takes
the vmapped dimension as one more of them (:func:`batched_first`); one that is not runs
once per vmapped slice (:func:`per_slice`), correct for every Function at the cost of a
Python loop. The custom ops' rules are in :mod:`spatial_layers.ops.batching`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor


def batched_first(info, in_dims: Sequence[int | None], *tensors: Tensor | None) -> list:
    """``tensors`` with their vmapped dimension first; expanded (no copy) where they have
    none. None stays None."""
    return [
        t
        if t is None
        else t.unsqueeze(0).expand(info.batch_size, *t.shape)
        if dim is None
        else t.movedim(dim, 0)
        for t, dim in zip(tensors, in_dims, strict=True)
    ]


def per_slice(apply: Callable, info, in_dims: Sequence[int | None], *args):
    """``apply(*args)`` for each vmapped slice, outputs stacked along dimension 0.

    Returns ``(outputs, out_dims)`` as a ``vmap`` staticmethod does; a None output (or a
    non-tensor one) is taken from the first slice.
    """
    outputs = []
    for index in range(info.batch_size):
        sliced = [
            arg.select(dim, index) if dim is not None else arg
            for arg, dim in zip(args, in_dims, strict=True)
        ]
        outputs.append(apply(*sliced))
    if isinstance(outputs[0], Tensor):
        return torch.stack(outputs), 0
    stacked = tuple(
        torch.stack(parts) if isinstance(parts[0], Tensor) else parts[0]
        for parts in zip(*outputs, strict=True)
    )
    return stacked, tuple(0 if isinstance(out, Tensor) else None for out in stacked)
