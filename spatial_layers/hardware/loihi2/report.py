"""What a network exported for Loihi 2 uses of the chip, and whether it fits.

:func:`loihi2_report` takes the program that ``spsnn export --target loihi2``
writes (:func:`spatial_layers.nir.loihi2.graph_report` reads it from the graph)
and counts, per layer: synapses, active synapses (the connectivity mask),
synapses with a non-zero 8-bit weight, fan-in, the delay histogram and the
weight exponent; per population: neurons, formats and the cores it takes.

Core estimate, the mapping rule (stated, not Intel's compiler): a
population is spread over whole cores, none shared with another population;
a core holds at most :data:`NEURONS_PER_CORE` neurons and the incoming
synapses of its neurons in :data:`SYNAPSE_BYTES_PER_CORE` bytes of synaptic
memory at :data:`BYTES_PER_SYNAPSE` bytes each (8-bit weight, 6-bit delay);
``cores = max(ceil(N / 1024), ceil(active synapses in * 2 / 128 KiB))``. The
input is fed from outside the neuron cores. Chip limits: :data:`CHIP_CORES`
cores, :data:`CHIP_NEURONS` neurons, :data:`CHIP_SYNAPSES` synapses.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from spatial_layers.hardware.loihi2.formats import ACTIVATION_BITS, ACTIVATION_SHIFT, MAX_DELAY
from spatial_layers.hardware.loihi2.reference import INPUT, MANTISSA_LIMIT, Program

NEURONS_PER_CORE = 1024
SYNAPSE_BYTES_PER_CORE = 128 * 1024
BYTES_PER_SYNAPSE = 2
CHIP_CORES = 128
CHIP_NEURONS = 1_000_000
CHIP_SYNAPSES = 120_000_000
ACTIVATION_LIMIT = 2 ** (ACTIVATION_BITS - 1) - 1


def loihi2_report(
    program: Program, layer_records: dict[str, dict], clipped_synapses: int = 0
) -> dict[str, Any]:
    """Per-layer and per-population use of the chip, the totals, and what does not fit.

    Args:
        program: what the chip runs.
        layer_records: per layer name, its record of the export (``mask``, ``source``,
            ``target``, ``scale_exponent``, ``weight_exponent``).
        clipped_synapses: delays clipped to the chip's limit at export.

    Returns:
        ``layers`` (name, source, target, synapses, active, nonzero,
        max_fan_in, mean_fan_in, scale_exponent, weight_exponent,
        delay_histogram {steps: count}, max_payload: the largest spike
        payload it receives), ``populations`` (name, neurons,
        fraction_bits, decay, current_decay (du of Lava's LIF process; None for the
        microcoded LIF), threshold_mantissa, cores), ``totals``,
        ``clipped_synapses`` (delays clipped to 62 at export, as asked),
        ``mapping_rule`` and ``problems`` (what does not fit; empty: fits).
    """
    layers = [_layer_row(name, record, program) for name, record in layer_records.items()]
    populations = []
    for population in program.populations:
        active = sum(row["active"] for row in layers if row["target"] == population.name)
        cores = max(
            math.ceil(population.size / NEURONS_PER_CORE),
            math.ceil(active * BYTES_PER_SYNAPSE / SYNAPSE_BYTES_PER_CORE),
        )
        mantissa = population.threshold
        populations.append(
            {
                "name": population.name,
                "neurons": population.size,
                "fraction_bits": population.fraction_bits,
                "decay": population.decay,
                "current_decay": population.current_decay,
                "threshold_mantissa": None if mantissa is None else mantissa >> ACTIVATION_SHIFT,
                "cores": cores,
            }
        )
    totals = {
        "cores": sum(p["cores"] for p in populations),
        "neurons": sum(p["neurons"] for p in populations),
        "synapses": sum(row["active"] for row in layers),
    }
    clipped = int(clipped_synapses)
    return {
        "target": "loihi2",
        "layers": layers,
        "populations": populations,
        "totals": totals,
        "clipped_synapses": clipped,
        "mapping_rule": (
            f"per population: max(ceil(N / {NEURONS_PER_CORE}), ceil(active synapses in * "
            f"{BYTES_PER_SYNAPSE} B / {SYNAPSE_BYTES_PER_CORE // 1024} KiB)) cores, none shared"
        ),
        "problems": layer_problems(layers) + chip_problems(totals),
    }


def _layer_row(name: str, record: dict, program: Program) -> dict[str, Any]:
    mask = np.asarray(record["mask"]).astype(bool)
    branches = [b for b in program.branches if b.layer == name]
    histogram: dict[int, int] = {}
    nonzero = 0
    for branch in branches:
        count = int(np.count_nonzero(branch.mantissas))
        nonzero += count
        if count:
            histogram[branch.delay] = histogram.get(branch.delay, 0) + count
    fan_in = mask.sum(axis=1)
    return {
        "name": name,
        "source": str(record["source"]),
        "target": str(record["target"]),
        "synapses": int(mask.size),
        "active": int(mask.sum()),
        "nonzero": nonzero,
        "max_fan_in": int(fan_in.max(initial=0)),
        "mean_fan_in": float(fan_in.mean()) if fan_in.size else 0.0,
        "scale_exponent": _optional_int(record.get("scale_exponent")),
        "weight_exponent": _optional_int(record.get("weight_exponent")),
        "delay_histogram": dict(sorted(histogram.items())),
        "max_payload": 2**program.payload_bits if record["source"] == INPUT else 1,
    }


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def layer_problems(layers: list[dict[str, Any]]) -> list[str]:
    """Layers that break a per-synapse limit: delays above 62, a 16-bit input that can overflow."""
    problems = []
    for row in layers:
        if row["delay_histogram"] and max(row["delay_histogram"]) > MAX_DELAY:
            problems.append(f"{row['name']}: delays above {MAX_DELAY} steps")
        largest = row["max_fan_in"] * MANTISSA_LIMIT * row["max_payload"]
        if largest > ACTIVATION_LIMIT:
            payload = f" x payload {row['max_payload']}" if row["max_payload"] > 1 else ""
            problems.append(
                f"{row['name']}: fan-in {row['max_fan_in']} x {MANTISSA_LIMIT}{payload} can "
                f"exceed the {ACTIVATION_BITS}-bit synaptic input of a step"
            )
    return problems


def chip_problems(totals: dict[str, int]) -> list[str]:
    """Totals (``cores``, ``neurons``, ``synapses``) above one chip's, named."""
    limits = {"cores": CHIP_CORES, "neurons": CHIP_NEURONS, "synapses": CHIP_SYNAPSES}
    return [
        f"{what}: {totals[what]} above one chip's {limit}"
        for what, limit in limits.items()
        if totals[what] > limit
    ]


def format_report(report: dict[str, Any]) -> str:
    """The report as text tables, as ``spsnn export --target loihi2`` prints it."""
    lines = [
        "Loihi 2 profile: layers",
        f"{'layer':<12} {'source':<9} {'target':<9} {'synapses':>9} {'active':>7} "
        f"{'nonzero':>7} {'fan-in max/mean':>15} {'w_exp':>5}  delays (steps: count)",
    ]
    for row in report["layers"]:
        histogram = " ".join(f"{k}:{v}" for k, v in row["delay_histogram"].items()) or "-"
        exponent = "-" if row["weight_exponent"] is None else str(row["weight_exponent"])
        fan_in = f"{row['max_fan_in']}/{row['mean_fan_in']:.1f}"
        lines.append(
            f"{row['name']:<12} {row['source']:<9} {row['target']:<9} {row['synapses']:>9} "
            f"{row['active']:>7} {row['nonzero']:>7} {fan_in:>15} {exponent:>5}  {histogram}"
        )
    lines += [
        "Loihi 2 profile: populations",
        f"{'population':<12} {'neurons':>7} {'frac bits':>9} {'dv':>5} {'du':>5} {'vth':>7} "
        f"{'cores':>5}",
    ]
    for row in report["populations"]:
        threshold = "-" if row["threshold_mantissa"] is None else str(row["threshold_mantissa"])
        current = "-" if row.get("current_decay") is None else str(row["current_decay"])
        lines.append(
            f"{row['name']:<12} {row['neurons']:>7} {row['fraction_bits']:>9} "
            f"{row['decay']:>5} {current:>5} {threshold:>7} {row['cores']:>5}"
        )
    totals = report["totals"]
    lines.append(
        f"total: {totals['cores']} of {CHIP_CORES} cores, {totals['neurons']} neurons, "
        f"{totals['synapses']} synapses (cores: {report['mapping_rule']})"
    )
    if report["clipped_synapses"]:
        lines.append(
            f"{report['clipped_synapses']} synapses had delays above {MAX_DELAY} steps: clipped"
        )
    problems = report["problems"]
    verdict = "DOES NOT FIT: " + "; ".join(problems) if problems else "fits one Loihi 2 chip"
    lines.append(verdict)
    return "\n".join(lines)
