"""Which implementation runs the fused loops over time: torch, or Triton kernels."""

from __future__ import annotations

import importlib.util
import os
from typing import Literal

from torch import Tensor

Backend = Literal["auto", "torch", "triton"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "triton")

#: Whether the optional ``triton`` package is installed (looked up, not imported).
TRITON_FOUND = importlib.util.find_spec("triton") is not None


def resolve_backend(backend: Backend, like: Tensor) -> Literal["torch", "triton"]:
    """The implementation that runs the multi-step loops for tensors like ``like``.

    ``"auto"`` takes Triton for CUDA tensors when ``triton`` is installed, torch
    otherwise. ``"triton"`` on a CPU tensor needs Triton's interpreter
    (``TRITON_INTERPRET=1`` set before the kernels are first imported).

    Example:
        >>> import torch
        >>> resolve_backend("auto", torch.zeros(1))
        'torch'
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch" or (backend == "auto" and not (like.is_cuda and TRITON_FOUND)):
        return "torch"
    if not TRITON_FOUND:
        raise ValueError(
            "backend='triton' needs the triton package, which is not installed: "
            "pip install triton, or use backend='torch' (or 'auto')"
        )
    if not like.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(
            f"backend='triton' runs on CUDA tensors, got a tensor on {like.device}: use "
            "backend='torch' (or 'auto'), or set TRITON_INTERPRET=1 before importing "
            "spatial_layers to run the Triton kernels in Triton's CPU interpreter"
        )
    return "triton"
