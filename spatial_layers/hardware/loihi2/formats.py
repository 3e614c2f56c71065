r"""Loihi 2's number formats, and the fixed-point LIF that trains in them.

The formats are those of Lava's bit-accurate Loihi models
(``lava.proc.lif.models.PyLifModelBitAcc``, ``lava.utils.weightutils``):

- synaptic delays: whole steps in 0..62 (:data:`MAX_DELAY`);
- weights: an 8-bit signed mantissa with one exponent per layer; the
  synaptic input of a step (the sum of the mantissas of the synapses that
  spiked, a 16-bit signed integer) is shifted left by ``6 + weight_exp``;
- membrane ``v``: a 24-bit signed integer, saturating at +-(2**23 - 1);
- decay: 12-bit ``dv`` in 0..4095, ``v <- sign(v) * ((|v| * (4096 - dv)) >> 12)``
  (the product rounded toward zero);
- threshold: a 17-bit unsigned mantissa ``vth``, compared as ``vth << 6``;
  a neuron spikes when ``v > vth << 6``;
- input spikes: graded (Loihi 2's spikes carry an integer payload), here
  ``P = round(x * 2**5)`` in 0..32 for an input value ``x`` in [0, 1], so that
  inputs split between two steps (Yin-Yang's ``rounding="linear"``) keep
  their timing; binary inputs are P in {0, 32}. The input layer's synaptic
  input ``sum m * P`` stays within 16 bits for fan-ins up to 8 (the report
  names larger ones), and is shifted by ``6 + weight_exp`` with
  ``weight_exp = s + f - 6 - 5``.

How spsnn's numbers map onto them (one population, spsnn's units): the
membrane unit is ``2**-f`` (``f``, the population's fraction bits), so
``U = v * 2**-f`` exactly; a layer's weights are ``m * 2**s`` with ``m`` in
-127..127 (symmetric, so that no weight changes sign: masks and Dale's
signs survive) and ``s`` its scale exponent, which makes the Loihi weight
exponent ``s + f - 6``; the threshold is ``(vth << 6) * 2**-f``, the decay
``beta = (4096 - dv) / 4096``. :func:`fraction_bits` picks ``f``: as large as
the formats allow (finer decay rounding) while the membrane keeps
:data:`HEADROOM_BITS` bits above the threshold before it saturates.

Reset and leak: spsnn's LIF (snnTorch's ``Leaky``) subtracts the threshold
one step after the spike, ``v_t = decay(v_{t-1}) + a_t - vth_eff * [v_{t-1} > vth_eff]``,
and has no separate synaptic current. On Loihi 2 that is a microcoded
neuron program (Loihi 2's neuron models are programmable): Lava's standard
CUBA LIF process resets to 0 at once and is not the same model (its current
state with ``du = 4095`` and the 1-bit ``ds_offset`` decays fully each step,
as here). :func:`fixed_point_leaky` is this arithmetic in torch with
straight-through gradients, for quantisation-aware training.

spsnn's ``cuba`` neurons with ``reset="zero", reset_delay=False`` are Lava's stock LIF
process (``lava.proc.lif``, ``PyLifModelBitAcc``) itself, whose arithmetic
:func:`fixed_point_synaptic` runs:

- current ``u``: 24 bits, ``u <- sign(u) * ((|u| * (4096 - (du + 1))) >> 12) + (a << shift)``
  (``du`` 12 bits, the chip's 1-bit ``ds_offset`` added: decay ``(4095 - du) / 4096``,
  :func:`current_decay_code`), wrapping around at +-2**23 (Lava's overflow);
- voltage ``v <- sign(v) * ((|v| * (4096 - dv)) >> 12) + u``, saturating at +-(2**23 - 1);
- spike ``v > vth << 6``, then ``v <- 0`` in the same step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spatial_layers.surrogate import ArctanSpike

#: Largest synaptic delay, in steps (6 bits; Lava-dl NetX clamps larger ones).
MAX_DELAY = 62
#: Bits of a weight mantissa (signed); the profile uses the symmetric -127..127.
WEIGHT_BITS = 8
#: Loihi's per-layer weight exponent range.
WEIGHT_EXPONENTS = range(-8, 8)
#: Synaptic input and threshold are shifted left by this before meeting the membrane.
ACTIVATION_SHIFT = 6
#: Bits of the synaptic input of one step (signed), before the shift.
ACTIVATION_BITS = 16
#: Bits of the membrane state (signed, saturating).
STATE_BITS = 24
#: Bits of the decay constant dv (unsigned): decay factor (4096 - dv) / 4096.
DECAY_BITS = 12
#: Bits of the threshold mantissa (unsigned).
THRESHOLD_BITS = 17
#: Fraction bits of an input spike's graded payload: x in [0, 1] is sent as round(x * 2**5).
INPUT_FRACTION_BITS = 5
#: The profile's choice: the membrane saturates no lower than 2**HEADROOM_BITS thresholds.
HEADROOM_BITS = 6

_DECAY_UNITY = 2**DECAY_BITS
_STATE_LIMIT = 2 ** (STATE_BITS - 1) - 1


def decay_code(beta: float) -> int:
    """Loihi's ``dv`` for a decay ``beta`` per step: ``round((1 - beta) * 4096)``, in 0..4095.

    Raises ValueError when ``beta`` is below 1 / 4096 (``dv`` would need 13 bits).

    Example:
        >>> decay_code(0.95), decay_code(1.0)
        (205, 0)
    """
    if not 0 < beta <= 1:
        raise ValueError(f"beta must be in (0, 1], got {beta}")
    code = round((1 - beta) * _DECAY_UNITY)
    if code >= _DECAY_UNITY:
        raise ValueError(
            f"beta={beta} needs dv={code}, above Loihi 2's 12-bit 0..4095: use beta >= 1/4096"
        )
    return code


def current_decay_code(alpha: float) -> int:
    """Loihi's current decay ``du`` for a decay ``alpha`` per step: the chip decays the
    current by ``(4096 - (du + 1)) / 4096`` (its 1-bit ``ds_offset``), so
    ``du = 4095 - round(alpha * 4096)``, in 0..4095.

    Example:
        >>> current_decay_code(0.5), current_decay_factor(current_decay_code(0.5))
        (2047, 0.5)
    """
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha (the current's decay) must be in [0, 1), got {alpha}")
    code = _DECAY_UNITY - 1 - round(alpha * _DECAY_UNITY)
    if code < 0:
        raise ValueError(
            f"alpha={alpha} needs du={code} below 0: Loihi 2 decays the current by at most "
            f"4095/4096 per step; use alpha <= {(_DECAY_UNITY - 1) / _DECAY_UNITY}"
        )
    return code


def current_decay_factor(code: int) -> float:
    """The decay per step that ``du`` applies to the current, ``(4095 - du) / 4096``."""
    return (_DECAY_UNITY - 1 - code) / _DECAY_UNITY


def decay_factor(decay: int) -> float:
    """The decay per step that ``dv`` applies, ``(4096 - dv) / 4096`` (exact in float64)."""
    return (_DECAY_UNITY - decay) / _DECAY_UNITY


def fraction_bits(scale_exponents: list[int], reference: float) -> int:
    """The fraction bits ``f`` of a population's membrane (its unit is ``2**-f``).

    Args:
        scale_exponents: the exponent of the grid of every layer's input to
            the population: ``s`` of its weights ``m * 2**s`` (all-zero layers
            left out), less :data:`INPUT_FRACTION_BITS` for the input layer,
            whose spikes are graded.
        reference: the threshold (1.0 for a non-spiking readout): the
            membrane must reach ``2**HEADROOM_BITS`` times it before saturating.

    Returns:
        The largest ``f`` with every weight exponent ``s + f - 6`` in -6..7 (a
        left shift of the input by ``s + f``, exact; Loihi also allows -8
        and -7, which drop bits),
        the headroom kept, and a threshold mantissa of at most 17 bits.

    Raises:
        ValueError: no ``f`` fits (layers whose scales span more than the
            weight exponent's range; the message names them).
    """
    top_exponent = WEIGHT_EXPONENTS[-1]
    bits = math.floor(STATE_BITS - 1 - HEADROOM_BITS - math.log2(reference))
    bits = min([bits, *(top_exponent + ACTIVATION_SHIFT - s for s in scale_exponents)])
    while bits > 0 and round(reference * 2.0 ** (bits - ACTIVATION_SHIFT)) >= 2**THRESHOLD_BITS:
        bits -= 1
    lowest = max((-s for s in scale_exponents), default=bits)
    if bits < lowest:
        raise ValueError(
            f"weight scales 2**{sorted(scale_exponents)} into one population do not fit "
            f"Loihi 2's weight exponents {-ACTIVATION_SHIFT}..{top_exponent} (the left shifts) "
            "under one membrane format: shrink the spread of the layers' largest weights"
        )
    return bits


def threshold_code(threshold: float, bits: int) -> int:
    """The 17-bit mantissa ``vth`` whose ``(vth << 6) * 2**-bits`` is nearest ``threshold``."""
    code = round(threshold * 2.0 ** (bits - ACTIVATION_SHIFT))
    if not 1 <= code < 2**THRESHOLD_BITS:
        raise ValueError(
            f"threshold {threshold} needs mantissa {code} with {bits} fraction bits, "
            f"outside Loihi 2's 1..{2**THRESHOLD_BITS - 1}"
        )
    return code


def threshold_level(code: int, bits: int) -> float:
    """The threshold mantissa ``vth`` as Loihi compares it, ``(vth << 6) * 2**-bits``,
    in spsnn units (exact in float64)."""
    return (code << ACTIVATION_SHIFT) * 2.0**-bits


def snap(values: Tensor, exponent: int) -> Tensor:
    """``values`` rounded to multiples of ``2**exponent``, straight-through gradient.

    The delayed layers' outputs are sums of ``m * 2**s`` over spikes; float
    summation (an FFT, say) leaves them a rounding error off that grid,
    which this removes, so that they are exactly the chip's integers.
    """
    step = 2.0**exponent
    return values + (torch.round(values / step) * step - values).detach()


def fixed_point_leaky(
    currents: Tensor,
    *,
    decay: int,
    bits: int,
    threshold: int | None,
    alpha: float = 2.0,
) -> tuple[Tensor | None, Tensor]:
    r"""Loihi 2's integer LIF (module doc) on spsnn's units, for training.

    .. math::
        U_t = \mathrm{trunc}_f(\beta_q U_{t-1}) + I_t - \theta_q\, [U_{t-1} > \theta_q],
        \qquad S_t = [U_t > \theta_q]

    with :math:`U` saturating at :math:`\pm(2^{23} - 1) 2^{-f}`, truncation toward
    zero on the grid :math:`2^{-f}`, :math:`\beta_q = (4096 - dv) / 4096` and
    :math:`\theta_q = (vth \ll 6)\, 2^{-f}`, from the codes Loihi stores. Computed in
    float64, where every step is exact (products stay below 2**53), so the numbers
    are the chip's integers times :math:`2^{-f}`; the truncation and the saturation
    pass gradients straight through, the spike has the arctan surrogate of
    :class:`~spatial_layers.neurons.ArctanSpike`.

    Args:
        currents: (T, B, C) synaptic input, multiples of ``2**-bits``.
        decay: Loihi's 12-bit ``dv`` (:func:`decay_code`).
        bits: fraction bits of the membrane (:func:`fraction_bits`).
        threshold: the 17-bit threshold mantissa ``vth`` (:func:`threshold_code`),
            or None for a non-spiking integrator (the readout).
        alpha: surrogate slope.

    Returns:
        (T, B, C) spikes (None without ``threshold``) and membranes, in the
        dtype of ``currents`` (exact: at most 24 significant bits).
    """
    unit = 2.0**-bits
    limit = _STATE_LIMIT * unit
    factor = decay_factor(decay)
    level = None if threshold is None else threshold_level(threshold, bits)
    membrane = currents.new_zeros(currents.shape[1:], dtype=torch.float64)
    reset = torch.zeros_like(membrane)
    spikes, membranes = [], []
    for current in currents.double():
        decayed = membrane * factor
        decayed = decayed + (torch.trunc(decayed / unit) * unit - decayed).detach()
        membrane = decayed + current
        if level is not None:
            membrane = membrane - level * reset
        membrane = membrane + (membrane.clamp(-limit, limit) - membrane).detach()
        membranes.append(membrane)
        if level is not None:
            spike = ArctanSpike.apply(membrane - level, alpha)
            reset = spike.detach()
            spikes.append(spike)
    dtype = currents.dtype
    traces = torch.stack(membranes).to(dtype) if membranes else currents.new_zeros(currents.shape)
    if level is None:
        return None, traces
    return (torch.stack(spikes).to(dtype) if spikes else currents.new_zeros(currents.shape)), traces


def _decayed(value: Tensor, factor: float, unit: float) -> Tensor:
    """``value * factor`` truncated toward zero on the grid ``unit`` (straight-through)."""
    decayed = value * factor
    return decayed + (torch.trunc(decayed / unit) * unit - decayed).detach()


def fixed_point_synaptic(
    currents: Tensor,
    *,
    current_decay: int,
    decay: int,
    bits: int,
    threshold: int,
    alpha: float = 2.0,
) -> tuple[Tensor, Tensor]:
    r"""Lava's stock LIF process (module doc) on spsnn's units, for training.

    .. math::
        I_t = \mathrm{wrap}(\mathrm{trunc}_f(\alpha_q I_{t-1}) + x_t), \qquad
        v_t = \mathrm{sat}(\mathrm{trunc}_f(\beta_q U_{t-1}) + I_t), \qquad
        S_t = [v_t > \theta_q], \qquad U_t = v_t (1 - S_t)

    with :math:`\alpha_q = (4095 - du) / 4096`, :math:`\beta_q = (4096 - dv) / 4096`,
    :math:`\theta_q = (vth \ll 6)\, 2^{-f}`, truncation toward zero on the grid
    :math:`2^{-f}`, the current wrapping around at :math:`\pm 2^{23}` units and the
    voltage saturating at :math:`\pm(2^{23} - 1)` units (Lava's ``PyLifModelBitAcc``).
    Computed in float64, exact; truncation, wrap and saturation pass gradients straight
    through, the spike has the arctan surrogate, the reset is detached (spsnn's cuba with
    ``reset="zero", reset_delay=False``).

    Args:
        currents: (T, B, C) synaptic input, multiples of ``2**-bits``.
        current_decay: Loihi's 12-bit ``du`` (:func:`current_decay_code`).
        decay: Loihi's 12-bit ``dv`` (:func:`decay_code`).
        bits: fraction bits of current and membrane (:func:`fraction_bits`).
        threshold: the 17-bit threshold mantissa ``vth`` (:func:`threshold_code`).
        alpha: surrogate slope.

    Returns:
        (T, B, C) spikes and membranes :math:`v_t` (before the reset), in the dtype of
        ``currents``.
    """
    unit = 2.0**-bits
    limit = _STATE_LIMIT * unit
    wrap = 2.0 ** (STATE_BITS - 1) * unit
    current_factor = current_decay_factor(current_decay)
    factor = decay_factor(decay)
    level = threshold_level(threshold, bits)
    current = currents.new_zeros(currents.shape[1:], dtype=torch.float64)
    membrane = torch.zeros_like(current)
    spikes, membranes = [], []
    for drive in currents.double():
        current = _decayed(current, current_factor, unit) + drive
        wrapped = torch.where(current > wrap, current - 2 * wrap, current)
        wrapped = torch.where(wrapped <= -wrap, wrapped + 2 * wrap, wrapped)
        current = current + (wrapped - current).detach()
        value = _decayed(membrane, factor, unit) + current
        value = value + (value.clamp(-limit, limit) - value).detach()
        spike = ArctanSpike.apply(value - level, alpha)
        membrane = value * (1 - spike.detach())
        spikes.append(spike)
        membranes.append(value)
    dtype = currents.dtype
    if not spikes:
        return currents.new_zeros(currents.shape), currents.new_zeros(currents.shape)
    return torch.stack(spikes).to(dtype), torch.stack(membranes).to(dtype)
