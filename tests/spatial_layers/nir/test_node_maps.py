"""spsnn's NIR graphs run as snnTorch and Norse modules (nirtorch + our node maps).

The reference is spsnn itself: the exported network, run on the published Yin-Yang
test split (1000 samples, the main recipe's encoding) with integer delays; the
imported network runs one step per call, as nirtorch executes graphs. Every hidden
spike must agree, with and without delays, with recurrence.
"""

from __future__ import annotations

import nir
import pytest
import torch

import spatial_layers
from lightning_modules.data import YinYangDataModule
from spatial_layers.networks import SNNOutput, SpatialSNN
from spatial_layers.nir import norse_node_map, snntorch_node_map, to_nir
from tests.helpers.export import make_net, rounded, run_imported, spike_input

nirtorch = pytest.importorskip("nirtorch")
MAPS = {"snntorch": snntorch_node_map, "norse": norse_node_map}
#: the main recipe's network shape, untrained: delay-free, spatial delays, recurrent
NETWORKS = {"no_delays": {"delays": "none"}, "delays": {}, "recurrent": {"recurrent": True}}


@pytest.fixture(scope="module")
def yinyang_test_split() -> torch.Tensor:
    """(T, B, 5) spikes of the published test split, encoded as recipes/yinyang.yaml does."""
    data = YinYangDataModule(batch_size=1000, num_steps=30, t_max=20, rounding="linear")
    data.setup("test")
    (spikes, _), *rest = list(data.test_dataloader())
    assert not rest and spikes.shape == (1000, 30, 5)
    return spikes.transpose(0, 1)


def exported(net: SpatialSNN, tmp_path) -> nir.NIRGraph:
    path = tmp_path / "yy.nir"
    nir.write(path, to_nir(net))
    return nir.read(path)


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("framework", MAPS)
def test_yinyang_test_split_gives_spsnn_s_spikes(framework, network, yinyang_test_split, tmp_path):
    torch.manual_seed(0)
    net = SpatialSNN(5, 3, [128], max_delay=10, init_gain=5.0, **NETWORKS[network]).eval()
    graph = exported(net, tmp_path)
    if network != "no_delays":
        assert any(isinstance(node, nir.Delay) for node in graph.nodes.values())
    with torch.no_grad():
        expected: SNNOutput = rounded(net).run(yinyang_test_split)
    readout, hidden = run_imported(graph, MAPS[framework], yinyang_test_split)
    (ours,) = expected.hidden_spikes
    assert 0.02 < float(ours.mean()) < 0.5
    assert int((hidden[0] != ours).sum()) == 0  # of 3 840 000 spikes
    torch.testing.assert_close(readout, expected.membrane, rtol=0, atol=1e-4)


@pytest.mark.parametrize("framework", MAPS)
@pytest.mark.parametrize("case", ["masked_dale", "batch_norm", "recurrent"])
def test_two_hidden_layers_biases_and_masks(framework, case, tmp_path):
    net = make_net(case)
    x = spike_input(steps=40)
    with torch.no_grad():
        expected = rounded(net).run(x)
    readout, hidden = run_imported(exported(net, tmp_path), MAPS[framework], x)
    for ours, theirs in zip(expected.hidden_spikes, hidden, strict=True):
        assert ours.any() and torch.equal(theirs, ours)
    torch.testing.assert_close(readout, expected.membrane, rtol=0, atol=1e-5)


def test_snntorch_spiking_readout_and_a_new_sequence(tmp_path):
    net = make_net("spiking_readout")  # readout beta = 1: nir.IF, an snn.Leaky with beta 1
    graph = exported(net, tmp_path)
    x = spike_input(steps=40)
    with torch.no_grad():
        expected = rounded(net).run(x)
    module = nirtorch.nir_to_torch(graph, snntorch_node_map(graph))
    for _ in range(2):  # the second sequence starts afresh after spatial_layers.reset
        spatial_layers.reset(module)
        state, spikes = None, []
        with torch.no_grad():
            for x_t in x:
                out, state = module(x_t, state)
                spikes.append(out)
        assert expected.spikes.any() and torch.equal(torch.stack(spikes), expected.spikes)


def test_norse_refuses_leak_free_neurons_naming_the_node():
    graph = to_nir(make_net("spiking_readout"))
    with pytest.raises(ValueError, match=r"IF node \('readout'.*snntorch_node_map"):
        nirtorch.nir_to_torch(graph, norse_node_map(graph))


def test_a_graph_the_maps_cannot_run_is_refused_naming_the_node():
    graph = to_nir(make_net("spatial"))
    graph.nodes["hidden_1"].metadata["reset"] = "soft"
    for node_map in MAPS.values():
        with pytest.raises(ValueError, match="'hidden_1' states reset='soft'"):
            node_map(graph)


@pytest.mark.parametrize("framework", MAPS)
def test_a_graph_with_another_input_gain_runs_the_same(framework, tmp_path):
    """snnTorch's exporter writes r = tau / dt (gain 1); the weights then carry no gain."""
    net = make_net("masked_dale")
    graph = exported(net, tmp_path)
    for name, node in graph.nodes.items():
        if isinstance(node, nir.LIF | nir.LI):
            r = node.tau / float(graph.metadata["dt"])
            node.r = r
            for source, target in graph.edges:
                if target == name:
                    branch = graph.nodes[source]
                    branch.weight = branch.weight / r[:, None]
                    if isinstance(branch, nir.Affine):
                        branch.bias = branch.bias / r
    x = spike_input(steps=40)
    with torch.no_grad():
        expected = rounded(net).run(x)
    readout, hidden = run_imported(graph, MAPS[framework], x)
    for ours, theirs in zip(expected.hidden_spikes, hidden, strict=True):
        assert ours.any() and torch.equal(theirs, ours)
    torch.testing.assert_close(readout, expected.membrane, rtol=0, atol=1e-5)
