r"""k-bit weights: symmetric per-layer quantisation, and its straight-through training form.

.. math::
    s = \frac{\max_{ij} |w_{ij}|}{2^{b-1} - 1}, \qquad
    q_{ij} = \mathrm{round}(w_{ij} / s) \in \{-(2^{b-1}-1), \dots, 2^{b-1}-1\},
    \qquad \hat w_{ij} = s\, q_{ij}

or, with ``power_of_two=True`` (hardware that shifts instead of multiplying,
e.g. Loihi 2's per-layer weight exponent), the smallest power of two
:math:`s = 2^{\lceil \log_2(\max|w| / (2^{b-1} - 1)) \rceil}` that holds the
largest weight; with round half to even (``torch.round``, computed in float64): at most
:math:`2^b - 1` distinct values, error at most :math:`s / 2` per weight, zero
stays zero and no weight changes sign, so masks and Dale's signs survive.
Quantising quantised weights changes nothing. The same function serves
quantisation-aware training (:func:`fake_quantize`, through
``SpatialDelay.weight_bits``) and the export, so both see the same numbers.
Nothing here reads a value back to the host: no GPU sync on the training path.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Fewest bits accepted: 2 bits give the levels {-1, 0, 1} * scale.
MIN_WEIGHT_BITS = 2


def weight_levels(bits: int) -> int:
    """Largest integer code of a symmetric ``bits``-bit weight, ``2**(bits-1) - 1``."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < MIN_WEIGHT_BITS:
        raise ValueError(
            f"weight bits must be an int >= {MIN_WEIGHT_BITS} (symmetric levels "
            f"-(2^(b-1)-1) .. 2^(b-1)-1), got {bits!r}"
        )
    return 2 ** (bits - 1) - 1


#: How a layer's weight scale is chosen: ``max|w| / levels``, or the power of two above it.
WEIGHT_SCALES: tuple[str, ...] = ("max", "power_of_two")


def quantized_weight(
    weight: Tensor, bits: int, *, power_of_two: bool = False
) -> tuple[Tensor, Tensor]:
    """Symmetric per-tensor quantisation to ``bits`` bits (see the module doc).

    Args:
        weight: (C_out, C_in) (any shape) float weights.
        bits: bits per weight, >= 2.
        power_of_two: round the scale up to a power of two.

    Returns:
        ``scale * q`` shaped and typed like ``weight`` (no gradient), and the
        scale as a 0-d float64 tensor (1 for an all-zero weight).

    Example:
        >>> quantized_weight(torch.tensor([0.5, -1.0, 0.26, 0.0]), bits=3)[0]
        tensor([ 0.6667, -1.0000,  0.3333,  0.0000])
        >>> quantized_weight(torch.tensor([0.5, -1.0, 0.26, 0.0]), bits=3, power_of_two=True)[0]
        tensor([ 0.5000, -1.0000,  0.5000,  0.0000])
    """
    levels = weight_levels(bits)
    values = weight.detach().double()
    largest = values.abs().amax() if values.numel() else values.new_zeros(())
    scale = torch.where(largest > 0, largest / levels, torch.ones_like(largest))
    if power_of_two:
        scale = torch.exp2(torch.ceil(torch.log2(scale)))
    codes = torch.round(values / scale).clamp_(-levels, levels)
    return (codes * scale).to(weight.dtype), scale


def fake_quantize(weight: Tensor, bits: int, *, power_of_two: bool = False) -> Tensor:
    """:func:`quantized_weight` forward, identity gradient (straight-through estimator).

    Example:
        >>> w = torch.tensor([0.5, -1.0, 0.26], requires_grad=True)
        >>> fake_quantize(w, 3).sum().backward()
        >>> w.grad
        tensor([1., 1., 1.])
    """
    quantized = quantized_weight(weight, bits, power_of_two=power_of_two)[0]
    return weight + (quantized - weight).detach()
