"""Integer delays and k-bit weights for deployment: pure functions on tensors.

Delays are rounded exactly as the ``round`` kernel rounds them (halves upwards,
:func:`spatial_layers.kernels.round_delays`), so an exported network sees the
same integer delays as evaluation with ``kernel="round"``. Weights are
quantised symmetrically per layer:

.. math::
    s = \\frac{\\max_{ij} |w_{ij}|}{2^{b-1} - 1}, \\qquad
    q_{ij} = \\mathrm{round}(w_{ij} / s) \\in \\{-(2^{b-1}-1), \\dots, 2^{b-1}-1\\},
    \\qquad \\hat w_{ij} = s\\, q_{ij}

with round half to even (``torch.round``): at most :math:`2^b - 1` distinct
values, error at most :math:`s / 2` per weight, zero stays zero and no weight
changes sign (so Dale's signs and the connectivity mask survive).
"""

from __future__ import annotations

import torch
from torch import Tensor

from spatial_layers.kernels import round_delays

#: Fewest bits :func:`quantize_weights` accepts: 2 bits give the levels {-1, 0, 1} * scale.
MIN_WEIGHT_BITS = 2


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


def weight_levels(bits: int) -> int:
    """Largest integer code of a symmetric ``bits``-bit weight, ``2**(bits-1) - 1``."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < MIN_WEIGHT_BITS:
        raise ValueError(
            f"weight bits must be an int >= {MIN_WEIGHT_BITS} (symmetric levels "
            f"-(2^(b-1)-1) .. 2^(b-1)-1), got {bits!r}"
        )
    return 2 ** (bits - 1) - 1


def quantize_weights(weight: Tensor, bits: int) -> tuple[Tensor, float]:
    """Symmetric per-layer quantisation to ``bits`` bits (see the module doc).

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
    levels = weight_levels(bits)
    weight = weight.detach()
    if not torch.isfinite(weight).all():
        raise ValueError("cannot quantise weights that contain NaN or Inf")
    largest = float(weight.abs().max()) if weight.numel() else 0.0
    if largest == 0.0:
        return torch.zeros_like(weight), 1.0
    scale = largest / levels
    codes = torch.round(weight.double() / scale).clamp_(-levels, levels)
    return (codes * scale).to(weight.dtype), scale
