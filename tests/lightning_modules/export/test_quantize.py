"""integer_delays and quantize_weights against exact references (fractions, numpy)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from lightning_modules.export.quantize import integer_delays, quantize_weights
from spatial_layers import SpatialDelay


def half_up_exact(value: float) -> int:
    return math.floor(Fraction(value) + Fraction(1, 2))


def boundary_delays() -> torch.Tensor:
    values = []
    for k in range(8):
        half = np.float32(k + 0.5)
        values += [half, np.nextafter(half, np.float32(0)), np.nextafter(half, np.float32(20))]
    values += [np.float32(0.49999997), np.float32(0.0), np.float32(3.0)]
    return torch.tensor(np.array(values, dtype=np.float32))


def test_integer_delays_round_halves_up():
    delays = boundary_delays()
    expected = [half_up_exact(float(d)) for d in delays]
    assert integer_delays(delays).tolist() == expected
    assert integer_delays(delays).dtype == torch.int64
    assert integer_delays(torch.tensor([0.5, 1.5, 2.5])).tolist() == [1, 2, 3]  # not to even


def test_integer_delays_are_where_the_round_kernel_puts_the_spike():
    delays = boundary_delays()
    layer = SpatialDelay(1, delays.numel(), max_delay=10, kernel="round", delays="free")
    with torch.no_grad():
        layer.free_delays.copy_(delays[:, None])
        layer.weight.fill_(1.0)
    impulse = torch.zeros(12, 1, 1)
    impulse[0] = 1.0
    arrival = layer(impulse)[:, 0, :].argmax(dim=0)  # (C_out,) step of the delivered spike
    assert arrival.tolist() == integer_delays(delays).tolist()


def test_eight_bit_weights():
    weight = torch.randn(40, 30, generator=torch.Generator().manual_seed(0)) * 0.3
    weight[0, :5] = 0.0
    quantized, scale = quantize_weights(weight, 8)
    assert scale == pytest.approx(weight.abs().max().item() / 127, rel=1e-12)
    assert quantized.dtype == weight.dtype and quantized.shape == weight.shape
    assert quantized.unique().numel() <= 255
    assert (quantized - weight).abs().max().item() <= scale / 2 * (1 + 1e-6)
    codes = quantized.double() / scale
    torch.testing.assert_close(codes, codes.round(), rtol=0, atol=1e-4)
    assert codes.abs().max().round().item() == 127
    assert bool((quantized * weight >= 0).all()) and not quantized[0, :5].any()


def test_round_half_to_even_and_small_widths():
    weight = torch.tensor([3.0, 0.5, 1.5, -0.5, 2.5, -2.5])  # scale 1 with 3 bits (levels +-3)
    quantized, scale = quantize_weights(weight, 3)
    assert scale == 1.0
    assert quantized.tolist() == np.round(weight.numpy()).tolist() == [3, 0, 2, -0, 2, -2]
    quantized, scale = quantize_weights(torch.tensor([0.2, -0.7, 0.36]), 2)  # levels {-1, 0, 1}
    assert quantized.tolist() == pytest.approx([0.0, -0.7, 0.7])


def test_all_zero_and_invalid_arguments():
    quantized, scale = quantize_weights(torch.zeros(3, 4), 8)
    assert scale == 1.0 and not quantized.any()
    for bits in (1, 0, -3, 2.5, True, None):
        with pytest.raises(ValueError, match="bits must be an int >= 2"):
            quantize_weights(torch.ones(2), bits)
    with pytest.raises(ValueError, match="NaN or Inf"):
        quantize_weights(torch.tensor([1.0, float("nan")]), 8)
