"""Reading a graph written by ``spsnn export --target loihi2``: the chip's program, its report.

The Loihi 2 reference (:mod:`spatial_layers.hardware.loihi2.reference`) runs a
:class:`~spatial_layers.hardware.loihi2.reference.Program`, numpy data; this module
builds it from the exported NIR graph, checking every value against the chip's
formats, and reports what the graph uses of the chip
(:func:`~spatial_layers.hardware.loihi2.report.loihi2_report`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nir
import numpy as np

from spatial_layers.hardware.loihi2.reference import (
    INPUT,
    MANTISSA_LIMIT,
    SHIFTS,
    Branch,
    Population,
    Program,
)
from spatial_layers.hardware.loihi2.report import loihi2_report
from spatial_layers.nir.reader import count, integer, resolve_dt, text


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
    dt = resolve_dt(metadata, None)
    inputs = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if inputs != [INPUT]:
        raise ValueError(f"expected one Input node named {INPUT!r}, got {inputs}")
    payload_bits = count(
        "payload_fraction_bits of the Input node",
        graph.nodes[INPUT].metadata["loihi2"]["payload_fraction_bits"],
    )
    predecessor = {target: source for source, target in graph.edges}
    successor = {source: target for source, target in graph.edges}
    populations = {
        name: _population(name, node)
        for name, node in graph.nodes.items()
        if isinstance(node, nir.LIF | nir.IF | nir.CubaLIF | nir.LI | nir.I)
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
    spiking = isinstance(node, nir.LIF | nir.IF | nir.CubaLIF)
    if spiking != (mantissa is not None):
        raise ValueError(f"{name}: a spiking node needs a threshold mantissa, others none")
    shift = count(f"threshold_shift of node {name!r}", record["threshold_shift"])
    current_decay = record.get("current_decay")
    if isinstance(node, nir.CubaLIF) != (current_decay is not None):
        raise ValueError(f"{name}: a CubaLIF node needs a current decay du, others none")
    return Population(
        name,
        int(np.size(node.r)),
        count(f"fraction_bits of node {name!r}", record["fraction_bits"]),
        count(f"decay of node {name!r}", record["decay"]),
        None if mantissa is None else count(f"threshold_mantissa of {name!r}", mantissa) << shift,
        None if current_decay is None else count(f"current_decay of {name!r}", current_decay),
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
    layer = text(f"layer of node {name!r}", node.metadata["layer"])
    record = metadata["layers"][layer]
    weight = np.asarray(node.weight, dtype=np.float64)
    if "scale_exponent" not in record:  # an all-zero layer
        if np.any(weight):
            raise ValueError(f"{name}: non-zero weights without a scale exponent")
        return Branch(layer, source, target.name, delay, np.zeros(weight.shape, np.int64), 0)
    exponent = integer(f"scale_exponent of layer {layer!r}", record["scale_exponent"])
    mantissas = weight / 2.0**exponent
    whole = np.array_equal(mantissas, np.rint(mantissas))
    if not whole or np.abs(mantissas).max() > MANTISSA_LIMIT:
        raise ValueError(
            f"{name}: weights are not 8-bit mantissas (-{MANTISSA_LIMIT}..{MANTISSA_LIMIT}) "
            f"times 2**{exponent}"
        )
    shift = exponent - payload_bits + target.fraction_bits
    weight_exponent = integer(f"weight_exponent of layer {layer!r}", record["weight_exponent"])
    if shift not in SHIFTS or shift != weight_exponent + 6:
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


def graph_report(graph: nir.NIRGraph) -> dict[str, Any]:
    """:func:`~spatial_layers.hardware.loihi2.report.loihi2_report` of an exported graph."""
    metadata = graph.metadata
    clipped = count("the graph's metadata 'clipped_synapses'", metadata.get("clipped_synapses", 0))
    return loihi2_report(load_program(graph), metadata["layers"], clipped)
