"""Loihi 2's formats: each limit refused when crossed, and the fixed-point LIF against integers."""

from __future__ import annotations

import math

import pytest
import torch

from spatial_layers import leaky_sequence
from spatial_layers.hardware.loihi2 import formats as loihi2
from spatial_layers.neurons import LeakyParameters
from spatial_layers.quantization import fake_quantize, quantized_weight


def integer_lif(codes, decay, threshold_code, spiking=True):
    """Lava's bit-accurate voltage update in Python ints (du = 4095 + ds_offset: no current state),
    with spsnn's reset (subtract vth << 6 one step after the spike)."""
    limit = 2**23 - 1
    v, fired, spikes, trace = 0, False, [], []
    vth = None if threshold_code is None else threshold_code << 6
    for a in codes:
        magnitude = (abs(v) * (4096 - decay)) >> 12
        v = (magnitude if v >= 0 else -magnitude) + a
        if spiking and fired:
            v -= vth
        v = max(-limit, min(limit, v))
        fired = spiking and v > vth
        trace.append(v)
        spikes.append(int(fired))
    return spikes, trace


def test_decay_has_12_bits():
    assert loihi2.decay_code(0.95) == 205 and loihi2.decay_factor(205) == 3891 / 4096
    assert loihi2.decay_code(1.0) == 0
    assert loihi2.decay_code(1 / 4096) == 4095  # the largest dv
    with pytest.raises(ValueError, match=r"above Loihi 2's 12-bit 0\.\.4095"):
        loihi2.decay_code(1 / 10000)  # dv would be 4096


def test_threshold_mantissa_has_17_bits():
    assert loihi2.threshold_code(1.0, 17) == 2048
    assert loihi2.threshold_code((2**17 - 1) / 2048, 17) == 2**17 - 1  # the largest
    with pytest.raises(ValueError, match=r"outside Loihi 2's 1\.\.131071"):
        loihi2.threshold_code(64.0, 17)  # 64 * 2**11 = 2**17
    with pytest.raises(ValueError, match="outside"):
        loihi2.threshold_code(1.0, 5)  # rounds to mantissa 0


@pytest.mark.parametrize("threshold", [0.3, 1.0, 1.5, 40.0, 200.0])
@pytest.mark.parametrize("exponent", [-9, -5, 0, 3])
def test_fraction_bits_keep_every_format_in_range(threshold, exponent):
    bits = loihi2.fraction_bits([exponent], threshold)
    assert 1 <= loihi2.threshold_code(threshold, bits) < 2**17
    assert -6 <= exponent + bits - 6 <= 7  # Loihi weight exponent, left shifts only
    # headroom: the membrane saturates no lower than 64 thresholds
    assert (2**23 - 1) * 2.0**-bits >= 64 * threshold * (1 - 2**-10)
    # and f is the largest such: one more bit would break one of them
    more = bits + 1
    broken = (
        exponent + more - 6 > 7
        or (2**23 - 1) * 2.0**-more < 64 * threshold
        or round(threshold * 2.0 ** (more - 6)) >= 2**17
    )
    assert broken


def test_layers_whose_scales_span_too_far_are_refused():
    assert loihi2.fraction_bits([0], 1.0) == 13  # weight exponent 7, the top
    with pytest.raises(ValueError, match=r"do not fit Loihi 2's weight exponents -6\.\.7"):
        loihi2.fraction_bits([-5, 10], 1.0)


def test_power_of_two_weights_are_8_bit_mantissas():
    weight = torch.randn(40, 30, generator=torch.Generator().manual_seed(0)) * 3
    weight[0, :5] = 0
    quantized, scale = quantized_weight(weight, 8, power_of_two=True)
    exponent = math.log2(float(scale))
    assert exponent == round(exponent)
    mantissas = quantized.double() / scale
    assert torch.equal(mantissas, mantissas.round()) and mantissas.abs().max() <= 127
    assert mantissas.abs().max() >= 64  # the smallest power of two that holds the largest
    assert not quantized[0, :5].any() and bool((quantized * weight >= 0).all())
    assert torch.equal(quantized_weight(quantized, 8, power_of_two=True)[0], quantized)
    w = weight.clone().requires_grad_(True)
    fake_quantize(w, 8, power_of_two=True).sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))


def test_snap_rounds_to_the_grid_with_identity_gradient():
    values = torch.tensor([0.2499999, -0.7500001, 3.0], requires_grad=True)
    snapped = loihi2.snap(values, -2)
    assert snapped.tolist() == [0.25, -0.75, 3.0]
    snapped.sum().backward()
    assert values.grad.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("spiking", [True, False])
def test_fixed_point_lif_equals_integer_arithmetic(spiking):
    bits, beta, threshold = 11, 0.9, 1.0
    generator = torch.Generator().manual_seed(3)
    codes = torch.randint(-900, 1400, (50, 3, 4), generator=generator)
    codes[20:24, 0, 0] = 2**23  # saturates the positive side
    codes[30:33, 1, 1] = -(2**23)  # and the negative one
    currents = codes.double() * 2.0**-bits
    decay, vth = loihi2.decay_code(beta), loihi2.threshold_code(threshold, bits)
    spikes, membranes = loihi2.fixed_point_leaky(
        currents.float(), decay=decay, bits=bits, threshold=vth if spiking else None
    )
    for b in range(3):
        for c in range(4):
            want_spikes, want_trace = integer_lif(
                codes[:, b, c].tolist(), decay, vth if spiking else None, spiking
            )
            got = (membranes[:, b, c].double() * 2.0**bits).tolist()
            assert got == want_trace
            if spiking:
                assert spikes[:, b, c].tolist() == want_spikes
    if spiking:
        assert 0 < spikes.mean() < 1
        assert membranes.max() * 2**bits == 2**23 - 1 and membranes.min() * 2**bits == -(2**23 - 1)
    else:
        assert spikes is None


def test_fixed_point_lif_gradient_is_the_float_lifs():
    """With a fine grid the truncation is tiny, so the straight-through gradient is the
    float LIF's (same decay, same threshold) to the surrogate's sensitivity."""
    bits, beta = 17, 0.95
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(-(2**15), 2**16, (30, 2, 5), generator=generator)
    currents = (codes.double() * 2.0**-bits).requires_grad_(True)
    spikes, membranes = loihi2.fixed_point_leaky(
        currents, decay=loihi2.decay_code(beta), bits=bits, threshold=2 ** (bits - 6)
    )
    (spikes.sum() + membranes.sum()).backward()
    reference = currents.detach().clone().requires_grad_(True)
    params = LeakyParameters(loihi2.decay_factor(loihi2.decay_code(beta)), 1.0, 2.0)
    float_spikes, float_membranes = leaky_sequence(reference, params, backend="torch")
    assert torch.equal(float_spikes, spikes.detach())
    (float_spikes.sum() + float_membranes.sum()).backward()
    torch.testing.assert_close(currents.grad, reference.grad, rtol=1e-3, atol=1e-4)


def test_empty_sequence_and_batch():
    spikes, membranes = loihi2.fixed_point_leaky(
        torch.zeros(0, 2, 3), decay=410, bits=12, threshold=64
    )
    assert spikes.shape == membranes.shape == (0, 2, 3)
    spikes, membranes = loihi2.fixed_point_leaky(
        torch.zeros(4, 0, 3), decay=410, bits=12, threshold=64
    )
    assert spikes.shape == membranes.shape == (4, 0, 3)
