"""Constant tensors made once per shape, dtype and device instead of at every forward.

The delay layers use tensors that depend on shapes only: the real DFT matrices of the
whole-sequence spectral path (:func:`~spatial_layers.functional.delayed_linear`), the
tap indices of the kernels. Rebuilding them costs a dozen small launches per layer and
step (``arange``, ``sin``, ``cos``, ``cat``, casts), a large share of a training step's
launches at the SHD shape. :func:`cached` keeps them, keyed by everything that makes
them (a name, the shape arguments, dtype and device), so that an entry never goes stale:
after ``module.to(device)`` or a change of dtype or sequence length the key differs and
a new entry is made (DCLS's index grid, a plain attribute made on the first forward,
goes stale after ``.to()``; this cache cannot).

Where an entry is *not* kept, the tensors are built afresh, as before:

- inside ``torch.compile`` / ``torch.export`` tracing (the builder is traced into the
  graph, where the compiler folds it; no Python dict is guarded on);
- while a CUDA stream is being captured into a graph (memory allocated there belongs to
  the graph's private pool; the warm-up iterations before a capture fill the cache, and
  the graph keeps the entries it read: :func:`held`);
- for tensor subclasses and wrappers (fake tensors of a memory trace, ``meta``), whose
  constants would be of the same kind.

Entries are made outside ``torch.inference_mode`` (an inference tensor cannot be saved
for a later backward pass) and are never written to: callers only read them. At most
:data:`MAX_ENTRIES` are held (least recently used first out): a few small matrices.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor

T = TypeVar("T")

#: Most entries held at once (the least recently used goes first).
MAX_ENTRIES = 64

_ENTRIES: OrderedDict[tuple, object] = OrderedDict()


def _capturing(like: Tensor) -> bool:
    """Whether a CUDA graph is being captured on ``like``'s device's current stream."""
    return like.device.type == "cuda" and torch.cuda.is_current_stream_capturing()


def _cacheable(like: Tensor) -> bool:
    if torch.compiler.is_compiling() or type(like) is not Tensor or like.device.type == "meta":
        return False
    if torch._C._functorch.is_functorch_wrapped_tensor(like):
        return False
    return not _capturing(like)


def cached(key: tuple, like: Tensor, build: Callable[[], T]) -> T:
    """``build()``, made once per ``key``, ``like``'s dtype and ``like``'s device.

    Args:
        key: what else the value depends on (a name and its shape arguments; hashable).
        like: a tensor of the dtype and on the device the value is made for.
        build: makes the value (tensors on ``like.device``); never called twice for one key
            while the entry is held.

    Example:
        >>> x = torch.zeros(3)
        >>> first = cached(("doc-range", 4), x, lambda: torch.arange(4.0))
        >>> first is cached(("doc-range", 4), x, lambda: torch.arange(4.0))
        True
    """
    if not _cacheable(like):
        return build()
    full_key = (*key, like.dtype, like.device)
    try:
        value = _ENTRIES[full_key]
    except KeyError:
        with torch.inference_mode(False), torch.no_grad():
            value = build()
        _ENTRIES[full_key] = value
        while len(_ENTRIES) > MAX_ENTRIES:
            _ENTRIES.popitem(last=False)
        return value
    _ENTRIES.move_to_end(full_key)
    return value


def held() -> tuple[object, ...]:
    """Every value held now. A captured CUDA graph reads its constants at fixed addresses:
    :class:`~spatial_layers.networks.cuda_graphs.GraphedNetwork` keeps this tuple with its
    graph, so that an entry dropped from the cache later (least recently used, or
    :func:`clear`) is not freed under it."""
    return tuple(_ENTRIES.values())


def clear() -> None:
    """Drops every entry (they are made again on the next use)."""
    _ENTRIES.clear()
