"""Dropout on spike trains, and binary tensors saved for backward as bools.

Hidden spikes after dropout take two values only, 0 and ``scale = 1 / (1 - p)``. The
delayed layer that reads them saves them for its backward pass; stored as float32
that is 4 bytes per neuron and step, as bool 1 byte, with the same numbers when they
are read back (``bool * scale`` is exactly the value dropout wrote, ``1 * scale``).
At T = 1000, batch 256 and 256 neurons that is 250 MiB against 62 MiB per layer.

* :class:`SpikeDropout`: ``nn.Dropout`` whose output is exactly ``spikes * keep *
  scale`` and whose own saved mask is a bool tensor (``nn.Dropout`` keeps a float
  mask on CPU).
* :func:`binary_saves`: while a layer runs, tensors it saves for backward that *are*
  the given input (the same tensor object) are stored as bools and rebuilt on use.
  An op that reads its saved input piece by piece asks :func:`binary_level` and keeps
  the bools itself, so that its backward never holds the whole rebuilt float tensor.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import Tensor, nn

from spatial_layers.vmap_rules import batched_first


class _MaskedScale(torch.autograd.Function):
    """``x * keep * scale`` with ``keep`` (bool) saved, not a float mask."""

    @staticmethod
    def forward(x: Tensor, keep: Tensor, scale: float) -> Tensor:
        return (x * keep).mul_(scale)  # no float copy of the mask

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, keep, scale = inputs
        ctx.save_for_backward(keep)
        ctx.scale = scale

    @staticmethod
    def vmap(info, in_dims, x, keep, scale):
        # Elementwise: the vmapped dimension is one more dimension of it.
        x, keep = batched_first(info, in_dims[:2], x, keep)
        return _MaskedScale.apply(x, keep, scale), 0

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (keep,) = ctx.saved_tensors
        return (grad * keep).mul_(ctx.scale), None, None


class SpikeDropout(nn.Dropout):
    """Dropout for spike trains (0/1): keeps each element with probability 1 - p and
    scales it by ``1 / (1 - p)``, as ``nn.Dropout``, saving only a bool mask.

    For 0/1 inputs the output holds exactly two values, 0 and :attr:`scale`, which is
    what lets :func:`binary_saves` store it as bools.

    Shape:
        - Input: any shape.
        - Output: the input's shape.

    Example:
        >>> drop = SpikeDropout(0.5)
        >>> sorted(drop(torch.ones(1000)).unique().tolist())
        [0.0, 2.0]
    """

    @property
    def scale(self) -> float:
        """The value a kept spike takes in training, ``1 / (1 - p)``."""
        return 1.0 / (1.0 - self.p)

    def forward(self, spikes: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return spikes
        keep = torch.empty_like(spikes, dtype=torch.bool).bernoulli_(1.0 - self.p)
        return _MaskedScale.apply(spikes, keep, self.scale)


class _Packed(NamedTuple):
    """A saved tensor whose elements are 0 or ``level``, stored as bools."""

    nonzero: Tensor
    level: float
    dtype: torch.dtype


#: The tensors enclosing :func:`binary_saves` blocks declared binary: (weak reference, level).
_DECLARED: list[tuple[weakref.ref, float]] = []


def _plain_autograd_only() -> bool:
    """True inside ``torch.compile`` (Dynamo does not trace saved-tensor hooks) and under
    ``torch.func`` transforms (``grad`` and ``vjp`` refuse them): there the block runs
    unchanged and saves floats."""
    return torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active()


def binary_level(tensor: Tensor) -> float | None:
    """The level an enclosing :func:`binary_saves` declared ``tensor`` binary at, else None.

    An op that gets a level may save ``tensor.ne(0)`` itself and rebuild the parts it
    needs with :func:`unpack_binary`. None under ``torch.compile`` and ``torch.func``
    transforms (as there :func:`binary_saves` does nothing).
    """
    if _plain_autograd_only():
        return None
    return next((level for target, level in _DECLARED if target() is tensor), None)


def unpack_binary(nonzero: Tensor, level: float, dtype: torch.dtype) -> Tensor:
    """The tensor of 0s and ``level`` whose nonzero elements are ``nonzero`` (bool, any shape).

    Exactly the values that were packed: ``1 * level`` rounded to ``dtype``.
    """
    return nonzero.to(dtype).mul_(level)


@contextmanager
def binary_saves(tensor: Tensor, level: float) -> Iterator[None]:
    """Stores ``tensor`` as bools wherever autograd saves it inside the block.

    The caller guarantees that every element of ``tensor`` is 0 or ``level`` (exactly);
    saved tensors other than ``tensor`` itself are untouched. Inside
    ``torch.compile`` and ``torch.func`` transforms the block runs unchanged.

    Example:
        >>> x = torch.tensor([0.0, 2.0, 2.0]).requires_grad_()
        >>> w = torch.ones(3, requires_grad=True)
        >>> with binary_saves(x, 2.0):
        ...     y = (x * w).sum()
        >>> y.backward()
        >>> w.grad
        tensor([0., 2., 2.])
    """
    if _plain_autograd_only():
        yield
        return
    # Autograd keeps the hooks as long as what they packed: a weak reference lets
    # ``tensor`` itself be freed once its bool copy is saved.
    target = weakref.ref(tensor)

    def pack(saved: Tensor) -> Tensor | _Packed:
        if saved is target():
            return _Packed(saved.ne(0), level, saved.dtype)
        return saved

    def unpack(packed: Tensor | _Packed) -> Tensor:
        if isinstance(packed, _Packed):
            return unpack_binary(*packed)
        return packed

    _DECLARED.append((target, level))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            yield
    finally:
        _DECLARED.pop()  # blocks nest: this one's entry is the last
