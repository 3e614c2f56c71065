"""A numpy reference of Loihi 2's fixed-point dynamics, running a program exported for the chip.

Independent of spsnn's torch code: a :class:`Program` is read from the NIR graph that
``spsnn export --target loihi2`` writes (:func:`spatial_layers.nir.loihi2.load_program`)
and run in int64, as the chip computes (the formats:
:mod:`spatial_layers.hardware.loihi2.formats`; the arithmetic: each population's
``loihi2.dynamics`` metadata). Per step t and population, in the order input ->
hidden -> readout:

- synaptic input ``a = sum_j m_ij s_j(t - d_ij)`` over the layer's synapses
  (mantissas ``m = W / 2**scale_exponent``, integers in -127..127; ``s`` a
  hidden spike, 0 or 1, or an input's graded payload ``round(x * 2**p)``),
  a 16-bit signed value on the chip (:attr:`ReferenceRun.activation_overflows`
  counts sums outside it), shifted left by ``6 + weight_exponent``
  (``= scale_exponent - p + fraction_bits``);
- ``v = sign(v) * ((|v| * (4096 - dv)) >> 12) + (a << shift) - vth_eff * s(t - 1)``,
  saturating at +-(2**23 - 1) (:attr:`ReferenceRun.saturations` counts clips);
- ``s(t) = v > vth_eff`` with ``vth_eff = threshold_mantissa << 6`` (spiking
  populations only).

A population with a ``current_decay`` (spsnn's cuba: Lava's stock LIF process,
``PyLifModelBitAcc``) keeps a current instead and resets to 0 in the step of the spike:

- ``u = sign(u) * ((|u| * (4096 - (du + 1))) >> 12) + (a << shift)``, wrapping around
  at +-2**23 (:attr:`ReferenceRun.wraps` counts wraps);
- ``v = sign(v) * ((|v| * (4096 - dv)) >> 12) + u``, saturating at +-(2**23 - 1);
- ``s(t) = v > vth_eff``, then ``v = 0`` where ``s(t)``.

The torch network in the profile (:mod:`spatial_layers.hardware.loihi2.profile`) must
give the same spikes, and readout membranes equal to ``v * 2**-fraction_bits``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The input population's name in spsnn's graphs.
INPUT = "input"
_ACTIVATION_LIMIT = 2**15 - 1
_STATE_LIMIT = 2**23 - 1
#: Lava's current wraps around above this (and at or below its negative).
_WRAP = 2**23
#: Largest |mantissa| of the profile's symmetric 8-bit weights.
MANTISSA_LIMIT = 127
SHIFTS = range(0, 14)  # 6 + weight_exponent, weight_exponent in -6..7


@dataclass(frozen=True)
class Branch:
    """Synapses of one layer that share a delay: ``mantissas`` (C_out, C_in) int64."""

    layer: str
    source: str
    target: str
    delay: int
    mantissas: np.ndarray
    shift: int


@dataclass(frozen=True)
class Population:
    """A neuron population: size, fraction bits, ``dv``, ``vth << 6`` (None: no spikes), and
    the current's ``du`` of Lava's CUBA LIF process (None: the microcoded LIF)."""

    name: str
    size: int
    fraction_bits: int
    decay: int
    threshold: int | None
    current_decay: int | None = None


@dataclass(frozen=True)
class Program:
    """What the chip runs: input size and payload bits, populations in update order, branches."""

    inputs: int
    payload_bits: int
    populations: list[Population]
    branches: list[Branch]


@dataclass(frozen=True)
class ReferenceRun:
    """One run: (T, B, N) bool spikes and (T, B, N) int64 membranes by population name."""

    spikes: dict[str, np.ndarray]
    membranes: dict[str, np.ndarray]
    activation_overflows: int
    saturations: int
    wraps: int = 0


def run_program(program: Program, spikes: np.ndarray) -> ReferenceRun:
    """Runs the program on (T, B, inputs) input values in [0, 1], in integers.

    The host sends each value as the graded payload ``round(x * 2**payload_bits)``
    (half to even).

    Raises:
        ValueError: a value outside [0, 1], or the wrong size.
    """
    spikes = np.asarray(spikes, dtype=np.float64)
    if spikes.ndim != 3 or spikes.shape[-1] != program.inputs:
        raise ValueError(f"expected (T, B, {program.inputs}) spikes, got {spikes.shape}")
    if not ((spikes >= 0) & (spikes <= 1)).all():
        raise ValueError("Loihi 2's input payloads encode amplitudes in [0, 1]")
    steps, batch, _ = spikes.shape
    trains = {INPUT: np.rint(spikes * 2**program.payload_bits).astype(np.int64)}
    membranes, overflows, saturations, wraps = {}, 0, 0, 0
    for population in program.populations:
        into = [b for b in program.branches if b.target == population.name]
        v = np.zeros((batch, population.size), np.int64)
        u = np.zeros_like(v)
        fired = np.zeros((batch, population.size), bool)
        trace = np.zeros((steps, batch, population.size), np.int64)
        out = np.zeros((steps, batch, population.size), np.int64)
        for t in range(steps):
            drive = {}
            for branch in into:
                if t >= branch.delay:
                    arriving = trains[branch.source][t - branch.delay] @ branch.mantissas.T
                    drive[branch.shift] = drive.get(branch.shift, 0) + arriving
            current = np.zeros_like(v)
            for shift, activation in drive.items():
                overflows += int((np.abs(activation) > _ACTIVATION_LIMIT).sum())
                current += activation << shift
            if population.current_decay is not None:  # Lava's CUBA LIF process
                keep = 4096 - (population.current_decay + 1)
                u = np.sign(u) * ((np.abs(u) * keep) >> 12) + current
                wrapped = np.where(u > _WRAP, u - 2 * _WRAP, u)
                wrapped = np.where(wrapped <= -_WRAP, wrapped + 2 * _WRAP, wrapped)
                wraps += int((wrapped != u).sum())
                u = current = wrapped
            decayed = np.sign(v) * ((np.abs(v) * (4096 - population.decay)) >> 12)
            v = decayed + current
            if population.threshold is not None and population.current_decay is None:
                v -= population.threshold * fired
            saturations += int((np.abs(v) > _STATE_LIMIT).sum())
            v = np.clip(v, -_STATE_LIMIT, _STATE_LIMIT)
            trace[t] = v
            if population.threshold is not None:
                fired = v > population.threshold
                out[t] = fired
                if population.current_decay is not None:
                    v = np.where(fired, 0, v)  # reset to 0 in the step of the spike
        membranes[population.name] = trace
        trains[population.name] = out
    fired_trains = {
        p.name: trains[p.name].astype(bool) for p in program.populations if p.threshold is not None
    }
    return ReferenceRun(fired_trains, membranes, overflows, saturations, wraps)
