"""The Loihi 2 report: counts per layer and population, the core rule, the chip's limits."""

from __future__ import annotations

import numpy as np
import torch

from spatial_layers.hardware.loihi2.reference import run_program
from spatial_layers.hardware.loihi2.report import (
    CHIP_CORES,
    CHIP_NEURONS,
    CHIP_SYNAPSES,
    chip_problems,
    format_report,
)
from spatial_layers.networks import SpatialSNN
from spatial_layers.nir import to_nir
from spatial_layers.nir.loihi2 import graph_report, load_program


def test_report_counts_and_the_core_rule():
    torch.manual_seed(0)
    net = SpatialSNN(300, 3, [1100], max_delay=5, beta=0.9, delays="free")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        net.layers[0].mask.copy_(torch.rand(1100, 300, generator=generator) < 0.25)
    net.hardware_profile = "loihi2"
    report = graph_report(to_nir(net, target="loihi2"))
    first = report["layers"][0]
    mask = net.layers[0].mask
    assert first["synapses"] == 1100 * 300 and first["active"] == int(mask.sum())
    assert first["max_fan_in"] == int(mask.sum(dim=1).max())
    assert sum(first["delay_histogram"].values()) == first["nonzero"] <= first["active"]
    assert set(first["delay_histogram"]) <= set(range(6))
    hidden = report["populations"][0]
    # 1100 neurons need 2 cores of 1024; ~82 500 synapses * 2 B need 2 cores of 128 KiB
    assert hidden["cores"] == 2 and report["totals"]["cores"] == 3
    # fan-in x 127 (x payload 32 from the graded inputs) can overflow the 16-bit
    # synaptic input of a step: named, per layer
    fan_in = first["max_fan_in"]
    assert report["problems"] == [
        f"layers_0: fan-in {fan_in} x 127 x payload 32 can exceed the 16-bit synaptic input "
        "of a step",
        "layers_1: fan-in 1100 x 127 can exceed the 16-bit synaptic input of a step",
    ]
    wide = SpatialSNN(300, 3, [4], max_delay=5, beta=0.9, delays="free")
    with torch.no_grad():
        wide.layers[0].weight.fill_(127 / 128)  # mantissas 127 (scale 2**-7); 300 x 127 > 2**15
    wide.hardware_profile = "loihi2"
    graph = to_nir(wide, target="loihi2")
    report = graph_report(graph)
    assert any("fan-in 300 x 127" in problem for problem in report["problems"])
    assert "DOES NOT FIT" in format_report(report)
    everything = np.ones((8, 1, 300), np.int64)
    assert run_program(load_program(graph), everything).activation_overflows > 0


def test_chip_limits_are_named_when_crossed():
    fits = {"cores": CHIP_CORES, "neurons": CHIP_NEURONS, "synapses": CHIP_SYNAPSES}
    assert chip_problems(fits) == []
    for what in fits:
        problems = chip_problems(fits | {what: fits[what] + 1})
        assert len(problems) == 1 and problems[0].startswith(f"{what}: {fits[what] + 1} above")
