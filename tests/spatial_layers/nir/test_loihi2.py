"""``to_nir(..., target="loihi2")`` read back by ``load_program``: the chip's values in the graph,
delays over the chip's limit refused or clipped and counted."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from spatial_layers.hardware.loihi2.report import format_report
from spatial_layers.networks import SpatialSNN
from spatial_layers.networks.deploy import deployment_network
from spatial_layers.nir import to_nir
from spatial_layers.nir.loihi2 import graph_report
from tests.helpers.export import compare
from tests.helpers.hardware import binary_input, profile_net


def test_graph_holds_the_chips_values():
    net = profile_net()
    graph = to_nir(net, target="loihi2")
    layers = graph.metadata["layers"]
    assert graph.metadata["target"] == "loihi2" and int(graph.metadata["weight_bits"]) == 8
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Linear):
            record = layers[node.metadata["layer"]]
            mantissas = np.asarray(node.weight) / 2.0 ** record["scale_exponent"]
            assert np.array_equal(mantissas, np.rint(mantissas)), name
            assert np.abs(mantissas).max() <= 127, name
            assert -6 <= record["weight_exponent"] <= 7
        if isinstance(node, nir.Delay):
            steps = np.asarray(node.delay) / graph.metadata["dt"]
            assert np.allclose(steps, np.rint(steps)) and 0 < steps.max() <= 62
        if isinstance(node, nir.LIF | nir.LI):
            fmt = node.metadata["loihi2"]
            beta = (4096 - fmt["decay"]) / 4096
            assert node.tau == pytest.approx(graph.metadata["dt"] / (1 - beta))
            # r carries the input gain: r * dt / tau = 1, the weights stay the chip's
            assert np.allclose(np.asarray(node.r) * graph.metadata["dt"] / node.tau, 1.0)
            if isinstance(node, nir.LIF):
                vth = fmt["threshold_mantissa"] << fmt["threshold_shift"]
                assert np.allclose(node.v_threshold, vth * 2.0 ** -fmt["fraction_bits"])
    spikes, membrane, total, reference = compare(net, graph, binary_input())
    assert spikes == membrane == 0 and total > 0
    assert any(train.any() for train in reference.spikes.values())


def test_delays_above_62_are_refused_or_clipped_and_counted():
    torch.manual_seed(0)
    net = SpatialSNN(5, 3, [6], delays="free", max_delay=80, init_gain=6.0, beta=0.9)
    with torch.no_grad():
        net.layers[0].free_delays.uniform_(0, 60)
        net.layers[0].free_delays[:2, :3] = 70.0  # 6 synapses over the limit
        net.layers[1].free_delays.uniform_(0, 62)
    net.eval()
    with pytest.raises(ValueError, match="6 synapses have delays above max_delay=62"):
        to_nir(net, target="loihi2")
    graph = to_nir(net, target="loihi2", clip_delays=True)
    assert int(graph.metadata["clipped_synapses"]) == 6
    delays = [np.max(n.delay) for n in graph.nodes.values() if isinstance(n, nir.Delay)]
    assert round(max(delays) / graph.metadata["dt"]) == 62
    report = graph_report(graph)
    assert report["clipped_synapses"] == 6 and "6 synapses had delays" in format_report(report)
    with pytest.raises(ValueError, match="6 synapses have delays above max_delay=62"):
        deployment_network(net, target="loihi2")  # never clipped without being asked
    deployed, _ = deployment_network(net, target="loihi2", clip_delays=True)
    spikes, membrane, _, _ = compare(deployed, graph, binary_input(steps=90))
    assert spikes == membrane == 0
    # a lower limit: the graph and the deployed network clip to it alike
    graph = to_nir(net, target="loihi2", max_delay=30, clip_delays=True)
    assert int(graph.metadata["clipped_synapses"]) > 6
    deployed, _ = deployment_network(net, target="loihi2", max_delay=30, clip_delays=True)
    spikes, membrane, _, _ = compare(deployed, graph, binary_input(steps=90))
    assert spikes == membrane == 0
    with pytest.raises(ValueError, match="exceeds the loihi2 profile's 62"):
        to_nir(net, target="loihi2", max_delay=63)
    with pytest.raises(ValueError, match="8-bit weights"):
        to_nir(profile_net(), target="loihi2", weight_bits=4)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # read with float()/int() before: "0.001" parsed, True as 1 s, 2.5 clipped synapses as 2
        (lambda g: g.metadata.update(dt="0.001"), "metadata 'dt' holds text"),
        (lambda g: g.metadata.update(dt=True), "metadata 'dt' holds booleans"),
        (lambda g: g.metadata.update(dt=0.0), "metadata 'dt' is 0.0; it must be a positive"),
        (lambda g: g.metadata.update(clipped_synapses=2.5), "'clipped_synapses' is 2.5; it must"),
        (lambda g: g.metadata.update(clipped_synapses=True), "'clipped_synapses' holds booleans"),
        (lambda g: g.metadata.update(clipped_synapses="6"), "'clipped_synapses' holds text"),
        (
            lambda g: g.nodes["input"].metadata["loihi2"].update(payload_fraction_bits=6.5),
            "payload_fraction_bits of the Input node is 6.5",
        ),
    ],
)
def test_a_malformed_metadata_value_is_refused_naming_it(edit, message):
    graph = to_nir(profile_net(), target="loihi2")
    edit(graph)
    with pytest.raises(ValueError, match=message) as error:
        graph_report(graph)
    assert "\n" not in str(error.value)
