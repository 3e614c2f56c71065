"""k-bit weights: numpy reference, idempotence, straight-through gradient, the layer option."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spatial_layers import SpatialDelay
from spatial_layers.quantization import fake_quantize, quantized_weight


def numpy_quantized(weight: np.ndarray, bits: int) -> np.ndarray:
    levels = 2 ** (bits - 1) - 1
    scale = np.abs(weight).max() / levels
    return np.clip(np.round(weight / scale), -levels, levels) * scale  # half to even


@pytest.mark.parametrize("bits", [2, 3, 8])
def test_matches_numpy_and_is_idempotent(bits):
    weight = torch.randn(30, 20, generator=torch.Generator().manual_seed(bits), dtype=torch.float64)
    weight[0, :4] = 0.0
    quantized, scale = quantized_weight(weight, bits)
    np.testing.assert_array_equal(quantized.numpy(), numpy_quantized(weight.numpy(), bits))
    assert quantized.unique().numel() <= 2**bits - 1
    assert not quantized[0, :4].any() and bool((quantized * weight >= 0).all())
    assert torch.equal(quantized_weight(quantized, bits)[0], quantized)
    assert float(scale) == pytest.approx(float(weight.abs().max()) / (2 ** (bits - 1) - 1))


def test_fake_quantize_has_identity_gradient():
    weight = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(5, 4, dtype=torch.float64)
    out = fake_quantize(weight, 4)
    torch.testing.assert_close(out.detach(), quantized_weight(weight, 4)[0], rtol=0, atol=0)
    (out * upstream).sum().backward()
    torch.testing.assert_close(weight.grad, upstream, rtol=0, atol=0)


@pytest.mark.parametrize("dale", [False, True])
def test_layer_with_weight_bits_equals_a_float_layer_holding_quantised_weights(dale):
    torch.manual_seed(0)
    layer = SpatialDelay(6, 5, max_delay=4, kernel="linear")
    with torch.no_grad():
        layer.mask[0, :3] = False
    if dale:
        layer.sign = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0, 1.0])
    x = (torch.rand(10, 3, 6) < 0.3).float()
    expected_weight = quantized_weight(layer.effective_weight(), 3)[0]
    layer.weight_bits = 3
    assert torch.equal(layer.effective_weight(), expected_weight)
    reference = SpatialDelay(layer.pre, layer.post, max_delay=4, kernel="linear")
    with torch.no_grad():
        reference.weight.copy_(expected_weight)
    torch.testing.assert_close(layer(x), reference(x), rtol=0, atol=1e-6)
    streamed = torch.stack([layer.step(x_t) for x_t in x])
    torch.testing.assert_close(streamed, layer(x), rtol=0, atol=1e-6)
    layer(x).sum().backward()  # straight through: weights and coordinates both learn
    assert layer.weight.grad.abs().sum() > 0 and layer.pre.coords.grad.abs().sum() > 0
    assert "weight_bits=3" in repr(layer)


@pytest.mark.parametrize("bits", [1, 0, 2.5, True, "8"])
def test_bad_weight_bits(bits):
    layer = SpatialDelay(3, 2, max_delay=2)
    with pytest.raises(ValueError, match="bits must be an int >= 2"):
        layer.weight_bits = bits
