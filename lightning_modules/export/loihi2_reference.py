"""A numpy reference of Loihi 2's fixed-point dynamics, running a graph exported for the chip.

Independent of spsnn's torch code: it reads only the NIR graph that
``spsnn export --target loihi2`` writes (``nir`` and numpy) and computes in
int64, as the chip does (the formats: :mod:`spatial_layers.loihi2`; the
arithmetic: each population's ``loihi2.dynamics`` metadata). Per step t and
population, in the order input -> hidden -> readout:

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

The torch network in the profile (:mod:`lightning_modules.hardware`) must
give the same spikes, and readout membranes equal to ``v * 2**-fraction_bits``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np

#: The input population's name in spsnn's graphs.
INPUT = "input"
_ACTIVATION_LIMIT = 2**15 - 1
_STATE_LIMIT = 2**23 - 1
#: Largest |mantissa| of the profile's symmetric 8-bit weights.
MANTISSA_LIMIT = 127
_SHIFTS = range(0, 14)  # 6 + weight_exponent, weight_exponent in -6..7


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
    """A neuron population: size, fraction bits, ``dv``, and ``vth << 6`` (None: no spikes)."""

    name: str
    size: int
    fraction_bits: int
    decay: int
    threshold: int | None


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


def load_program(graph: nir.NIRGraph | str | Path) -> Program:
    """Reads a graph written by ``spsnn export --target loihi2`` (or its file).

    Raises:
        ValueError: the graph is not a loihi2 export, or a value is not in
            the chip's format (the message names the node).
    """
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.read(str(graph))
    metadata = graph.metadata
    if metadata.get("target") != "loihi2":
        raise ValueError(
            "not a graph exported for Loihi 2 (metadata target != 'loihi2'): "
            "write it with spsnn export --target loihi2"
        )
    dt = float(metadata["dt"])
    inputs = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if inputs != [INPUT]:
        raise ValueError(f"expected one Input node named {INPUT!r}, got {inputs}")
    payload_bits = int(graph.nodes[INPUT].metadata["loihi2"]["payload_fraction_bits"])
    predecessor = {target: source for source, target in graph.edges}
    successor = {source: target for source, target in graph.edges}
    populations = {
        name: _population(name, node)
        for name, node in graph.nodes.items()
        if isinstance(node, nir.LIF | nir.IF | nir.LI | nir.I)
    }
    branches = []
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Affine):
            raise ValueError(f"{name}: a bias (Affine node); the loihi2 profile has none")
        if not isinstance(node, nir.Linear):
            continue
        source, delay = predecessor[name], 0
        if isinstance(graph.nodes[source], nir.Delay):
            delays = np.asarray(graph.nodes[source].delay, dtype=np.float64) / dt
            delay = int(np.rint(delays.max()))
            if not np.array_equal(np.rint(delays), np.full_like(delays, delay)):
                raise ValueError(f"{source}: a Delay node must hold one whole number of steps")
            source = predecessor[source]
        target = successor[name]
        if target not in populations:
            raise ValueError(f"{name} feeds {target!r}, not a neuron population")
        payload = payload_bits if source == INPUT else 0
        branches.append(_branch(name, node, source, delay, metadata, populations[target], payload))
    order = _update_order(INPUT, populations, branches)
    return Program(
        int(np.prod(graph.nodes[INPUT].input_type["input"])),
        payload_bits,
        [populations[name] for name in order],
        branches,
    )


def _population(name: str, node: nir.NIRNode) -> Population:
    record = node.metadata.get("loihi2")
    if not isinstance(record, dict):
        raise ValueError(f"{name}: no loihi2 format in its metadata")
    mantissa = record.get("threshold_mantissa")
    spiking = isinstance(node, nir.LIF | nir.IF)
    if spiking != (mantissa is not None):
        raise ValueError(f"{name}: a spiking node needs a threshold mantissa, others none")
    shift = int(record["threshold_shift"])
    return Population(
        name,
        int(np.size(node.r)),
        int(record["fraction_bits"]),
        int(record["decay"]),
        None if mantissa is None else int(mantissa) << shift,
    )


def _branch(
    name: str,
    node: nir.Linear,
    source: str,
    delay: int,
    metadata: dict,
    target: Population,
    payload_bits: int,
) -> Branch:
    layer = str(node.metadata["layer"])
    record = metadata["layers"][layer]
    weight = np.asarray(node.weight, dtype=np.float64)
    if "scale_exponent" not in record:  # an all-zero layer
        if np.any(weight):
            raise ValueError(f"{name}: non-zero weights without a scale exponent")
        return Branch(layer, source, target.name, delay, np.zeros(weight.shape, np.int64), 0)
    exponent = int(record["scale_exponent"])
    mantissas = weight / 2.0**exponent
    whole = np.array_equal(mantissas, np.rint(mantissas))
    if not whole or np.abs(mantissas).max() > MANTISSA_LIMIT:
        raise ValueError(
            f"{name}: weights are not 8-bit mantissas (-{MANTISSA_LIMIT}..{MANTISSA_LIMIT}) "
            f"times 2**{exponent}"
        )
    shift = exponent - payload_bits + target.fraction_bits
    if shift not in _SHIFTS or shift != int(record["weight_exponent"]) + 6:
        raise ValueError(
            f"{name}: shift {shift} (weight exponent {record['weight_exponent']}) outside 0..13"
        )
    return Branch(layer, source, target.name, delay, mantissas.astype(np.int64), shift)


def _update_order(source: str, populations: dict, branches: list[Branch]) -> list[str]:
    """Populations in feed-forward order from the input (recurrence is refused)."""
    order, done = [], {source}
    while len(order) < len(populations):
        ready = [
            name
            for name in populations
            if name not in done
            and all(b.source in done for b in branches if b.target == name)
            and any(b.target == name for b in branches)
        ]
        if not ready:
            raise ValueError("the graph is not a feed-forward chain (recurrent or disconnected)")
        order += sorted(ready)
        done.update(ready)
    return order


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
    membranes, overflows, saturations = {}, 0, 0
    for population in program.populations:
        into = [b for b in program.branches if b.target == population.name]
        v = np.zeros((batch, population.size), np.int64)
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
            decayed = np.sign(v) * ((np.abs(v) * (4096 - population.decay)) >> 12)
            v = decayed + current
            if population.threshold is not None:
                v -= population.threshold * fired
            saturations += int((np.abs(v) > _STATE_LIMIT).sum())
            v = np.clip(v, -_STATE_LIMIT, _STATE_LIMIT)
            trace[t] = v
            if population.threshold is not None:
                fired = v > population.threshold
                out[t] = fired
        membranes[population.name] = trace
        trains[population.name] = out
    fired_trains = {
        p.name: trains[p.name].astype(bool) for p in program.populations if p.threshold is not None
    }
    return ReferenceRun(
        fired_trains,
        membranes,
        overflows,
        saturations,
    )
