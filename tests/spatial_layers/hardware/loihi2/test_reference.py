"""The numpy reference of the chip against the torch profile, spike for spike (graded inputs,
saturation), and what it refuses."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from spatial_layers.hardware.loihi2.reference import run_program
from spatial_layers.nir import to_nir
from spatial_layers.nir.loihi2 import load_program
from tests.helpers.export import compare
from tests.helpers.hardware import binary_input, profile_net


def test_graded_inputs_are_the_same_in_torch_and_the_reference():
    """Inputs split between two steps (Yin-Yang's rounding "linear"), sent as payloads."""
    net = profile_net()
    generator = torch.Generator().manual_seed(2)
    x = binary_input() * torch.rand(40, 8, 5, generator=generator)
    graph = to_nir(net, target="loihi2")
    assert graph.nodes["input"].metadata["loihi2"]["payload_fraction_bits"] == 5
    spikes, membrane, total, reference = compare(net, graph, x)
    assert spikes == membrane == 0 and total > 0
    assert any(train.any() for train in reference.spikes.values())


def test_saturation_is_the_same_in_torch_and_the_reference():
    net = profile_net(gain=30.0)
    spikes, membrane, _, reference = compare(net, to_nir(net, target="loihi2"), binary_input())
    assert reference.saturations > 0
    assert spikes == membrane == 0


def test_reference_refuses_what_the_chip_cannot_take():
    graph = to_nir(profile_net(), target="loihi2")
    program = load_program(graph)
    with pytest.raises(ValueError, match=r"amplitudes in \[0, 1\]"):
        run_program(program, np.full((4, 2, 5), 2.0))
    float_graph = to_nir(profile_net())
    with pytest.raises(ValueError, match="--target loihi2"):
        load_program(float_graph)
    name = next(n for n, node in graph.nodes.items() if isinstance(node, nir.Linear))
    graph.nodes[name].weight = graph.nodes[name].weight * 1.5  # no longer 8-bit mantissas
    with pytest.raises(ValueError, match="not 8-bit mantissas"):
        load_program(graph)
