"""Export of an inference network to ONNX (``torch.onnx``'s dynamo exporter), with a
dynamic T and B.

The LIF loops over time are custom ops (``spsnn::leaky_forward``,
``spsnn::recurrent_leaky_forward``) that ONNX has no function for: :func:`to_onnx`
traces the network inside :func:`~spatial_layers.ops.scan.loops_as_scan`, where they
are the same recursion as a scan, which ``torch.onnx`` writes as an ONNX ``Scan`` (one
loop over a dynamic T). The delayed layers take the dense path (a ``Conv``), as in any
export with a symbolic T (:func:`~spatial_layers.functional.plan_delayed_linear`).

Limits: inference only (the network in eval mode: no dropout, batch norm with its
running statistics; no gradients); the non-finite input checks of the eager network
are not in the graph; at least 2 time steps; float32 or float64 inputs.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from torch import Tensor, nn
from torch.export import Dim

from spatial_layers.neurons import NeuronBase
from spatial_layers.ops.scan import loops_as_scan


def dynamic_shapes(x: Tensor, batch_first: bool = False) -> tuple[dict[int, Any], ...]:
    """``dynamic_shapes`` for ``torch.export`` / ``torch.onnx.export`` of a module taking
    one (T, B, C) sequence ((B, T, C) with ``batch_first``): T >= 2 and B dynamic.

    Raises:
        ValueError: ``x`` is not 3-D, or has T < 2 or B < 2: torch.export specialises a
            dimension of size 0 or 1 to that constant, so the example must be larger.
    """
    if x.dim() != 3:
        raise ValueError(f"expected a (T, B, C) sequence, got shape {tuple(x.shape)}")
    time_dim, batch_dim = (1, 0) if batch_first else (0, 1)
    for name, size, unit in (
        ("T", x.shape[time_dim], "steps"),
        ("B", x.shape[batch_dim], "samples"),
    ):
        if size < 2:
            raise ValueError(
                f"a dynamic {name} needs an example with {name} >= 2 {unit} (torch.export "
                f"fixes a dimension of size 0 or 1), got {name}={size}; give a larger "
                "example, or export for this shape only (dynamic=False)"
            )
    return ({time_dim: Dim("T", min=2), batch_dim: Dim("B")},)


def to_onnx(
    module: nn.Module,
    x: Tensor,
    path: str | os.PathLike | None = None,
    *,
    dynamic: bool = True,
) -> torch.onnx.ONNXProgram:
    """ONNX program of an inference ``module`` (a SpatialSNN, a SpatialDelay, or a module
    of them) on (T, B, C) sequences like ``x``.

    Args:
        module: in eval mode (else ValueError: an exported graph is for inference).
        x: an example input, (T, B, C) ((B, T, C) if the module is ``batch_first``),
            T >= 2.
        path: where to save the ``.onnx`` file (none if None).
        dynamic: T and B dynamic (default), else the program is for ``x``'s shape only.

    Returns:
        The ``torch.onnx.ONNXProgram`` (``.model_proto``, ``.save(path)``; called with
        tensors it runs onnxruntime).
    """
    if module.training:
        raise ValueError(
            f"{type(module).__name__} is in training mode: ONNX export is for inference "
            "(dropout off, batch norm on its running statistics); call module.eval() first"
        )
    other = sorted(
        {
            m.family
            for m in module.modules()
            if isinstance(m, NeuronBase) and not getattr(m, "legacy", False)
        }
    )
    if other:
        raise ValueError(
            f"ONNX export runs LIF neurons with one constant beta; this module has {other} "
            "neurons (per-neuron or learned constants, cuba, adlif): export it with "
            "torch.export or to NIR (spatial_layers.nir.to_nir) instead"
        )
    if x.dim() != 3 or min(x.shape[:2]) < 1:
        raise ValueError(f"expected a (T, B, C) example sequence, got shape {tuple(x.shape)}")
    batch_first = bool(getattr(module, "batch_first", False))
    shapes = dynamic_shapes(x, batch_first) if dynamic else None
    # A copy without gradients: the exporter traces a scan's autograd for a captured
    # tensor that requires grad (the recurrent kernel) and fails on the symbolic batch.
    module = copy.deepcopy(module).requires_grad_(False)
    with loops_as_scan(), torch.no_grad():
        program = torch.export.export(module, (x,), dynamic_shapes=shapes)
    onnx_program = torch.onnx.export(program, (x,), dynamo=True, verbose=False)
    if path is not None:
        onnx_program.save(os.fspath(path))
    return onnx_program
