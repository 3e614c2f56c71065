"""Integer delays and k-bit weights for deployment: pure functions on tensors.

Delays are rounded exactly as the ``round`` kernel rounds them (halves upwards,
:func:`spatial_layers.kernels.round_delays`), so an exported network sees the
same integer delays as evaluation with ``kernel="round"``. Weights are
quantised symmetrically per layer by
:func:`spatial_layers.quantization.quantized_weight`, the function that
quantisation-aware training (``SpatialDelay.weight_bits``) uses too.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spatial_layers.kernels import round_delays
from spatial_layers.quantization import quantized_weight


def integer_delays(delays: Tensor) -> Tensor:
    """Delays in steps -> whole steps, halves upwards, as the ``round`` kernel.

    Args:
        delays: (...) float delays in time steps (>= 0).

    Returns:
        (...) int64 delays in time steps.

    Example:
        >>> integer_delays(torch.tensor([0.5, 1.49, 2.5, 0.49999997]))
        tensor([1, 1, 3, 0])
    """
    return round_delays(delays.detach()).to(torch.int64)


def quantize_weights(weight: Tensor, bits: int) -> tuple[Tensor, float]:
    """Symmetric per-layer quantisation to ``bits`` bits, for export (checks finiteness).

    Args:
        weight: (C_out, C_in) (any shape) float weights.
        bits: bits per weight, >= 2.

    Returns:
        The quantised weights ``scale * q`` as a float tensor shaped and typed
        like ``weight`` (q integer in [-(2^(bits-1)-1), 2^(bits-1)-1], round
        half to even), and ``scale`` (a float; 1.0 for an all-zero weight,
        whose codes are all 0).

    Example:
        >>> q, scale = quantize_weights(torch.tensor([0.5, -1.0, 0.26, 0.0]), bits=3)
        >>> q, scale
        (tensor([ 0.6667, -1.0000,  0.3333,  0.0000]), 0.3333333333333333)
    """
    if not torch.isfinite(weight).all():
        raise ValueError("cannot quantise weights that contain NaN or Inf")
    quantized, scale = quantized_weight(weight, bits)
    return quantized, float(scale)
