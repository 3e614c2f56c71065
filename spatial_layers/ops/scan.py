"""The LIF loops over time as ``torch.ops.higher_order.scan``, for export to ONNX.

``spsnn::leaky_forward`` and ``spsnn::recurrent_leaky_forward`` are opaque to exporters:
ONNX has no function for them. Inside :func:`loops_as_scan` (and ``torch.onnx.export``),
:func:`~spatial_layers.ops.functions.fused_leaky` and
:func:`~spatial_layers.ops.functions.fused_recurrent_leaky` run these functions
instead: the same recursion, step by step in the same operations (so the same bits in
torch), as a scan that ``torch.export`` keeps as one loop over a
symbolic T and ``torch.onnx`` translates to an ONNX ``Scan``. Forward only (no autograd
formula: an exported inference network needs none).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor
from torch._higher_order_ops.scan import scan

_ACTIVE = [False]


@contextlib.contextmanager
def loops_as_scan() -> Iterator[None]:
    """Within the block, the LIF forward ops run as scans (see the module docstring)."""
    previous = _ACTIVE[0]
    _ACTIVE[0] = True
    try:
        yield
    finally:
        _ACTIVE[0] = previous


def active() -> bool:
    """Whether :func:`loops_as_scan` is in effect, or ``torch.onnx.export`` runs."""
    return _ACTIVE[0] or torch.onnx.is_in_onnx_export()


def leaky_forward_scan(
    currents: Tensor, membrane: Tensor, beta: float, threshold: float, spiking: bool
) -> tuple[Tensor, Tensor]:
    """(spikes, membranes) of the multi-step LIF (spikes (0,) without ``spiking``): the
    recursion of :func:`~spatial_layers.ops.leaky.leaky_forward_torch` over (T, B, C)
    currents from the (B, C) ``membrane``, as a scan.

    Per step U_t = I_t + beta U_{t-1} - theta S_{t-1}, S_t = [U_t > theta] (the reset
    S_{-1} from the initial membrane), or, without ``spiking``, U_t = I_t + beta U_{t-1}.
    """
    if not spiking:

        def integrate(previous: Tensor, current: Tensor):
            membrane = current + previous * beta
            return membrane, membrane.clone()  # scan's outputs may not alias its carry

        return currents.new_empty(0), scan(integrate, membrane, currents.contiguous())[1]

    def step(carry: tuple[Tensor, Tensor], current: Tensor):
        previous, reset = carry
        membrane = current + previous * beta - reset * threshold
        fired = (membrane > threshold).to(membrane.dtype)
        return (membrane, fired), (fired.clone(), membrane.clone())

    reset = (membrane > threshold).to(membrane.dtype)
    return scan(step, (membrane, reset), currents.contiguous())[1]


def recurrent_leaky_forward_scan(
    currents: Tensor, kernel: Tensor, bias: Tensor | None, beta: float, threshold: float
) -> tuple[Tensor, Tensor]:
    """(spikes, membranes), both (T, B, C), of the LIF with delayed recurrence (the loop
    of :func:`~spatial_layers.ops.recurrent._recurrent_forward_torch`) as a scan.

    Per step the drive is I_t + sum_k S_{t-1-k} kernel[:, :, k]^T + bias, the spikes of
    the last K steps carried as a (K, B, C) history (no reshape of the symbolic batch
    inside the loop, which the ONNX exporter refuses); the feedback sums in another
    order than the op's one matrix product: equal to float rounding. The exporter
    fails on a ``kernel`` that requires grad (it traces the scan's autograd):
    :func:`~spatial_layers.onnx_export.to_onnx` exports a copy without gradients.
    """
    taps = kernel.shape[-1]
    # (K, C_in, C_out): torch.mm per tap (F.linear and matmul decompose into reshapes
    # of the symbolic batch).
    weights = kernel.permute(2, 1, 0).contiguous()

    def step(carry: tuple[Tensor, Tensor, Tensor], current: Tensor):
        previous, reset, history = carry
        feedback = torch.mm(history[0], weights[0])
        for k in range(1, taps):
            feedback = feedback + torch.mm(history[k], weights[k])
        if bias is not None:
            feedback = feedback + bias
        membrane = current + feedback + previous * beta - reset * threshold
        fired = (membrane > threshold).to(membrane.dtype)
        history = torch.cat([fired[None], history[: taps - 1]])
        return (membrane, fired, history), (fired.clone(), membrane.clone())

    zeros = currents.new_zeros(currents.shape[1:])
    history = currents.new_zeros(taps, *currents.shape[1:])
    return scan(step, (zeros, zeros.clone(), history), currents.contiguous())[1]
