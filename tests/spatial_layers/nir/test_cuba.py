"""NIR ``CubaLIF`` both ways: spsnn's cuba networks written and read back, graphs written
by snnTorch's ``Synaptic`` and Norse's ``LIFCell`` (and ``LIFBoxCell``, in Norse's
time-constant convention) imported and run against the framework that wrote them, spsnn's
graphs run through the snnTorch and Norse node maps; adaptive neurons refused."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from spatial_layers.networks import SpatialSNN
from spatial_layers.networks.deploy import deployment_network
from spatial_layers.nir import from_nir, norse_node_map, snntorch_node_map, to_nir
from tests.helpers.export import assert_runs_as_snntorch, run_imported

nirtorch = pytest.importorskip("nirtorch")

#: spsnn's cuba networks: snnTorch's reset (subtract, one step late) and Loihi's / Norse's
#: (to zero at once), recurrent with biases and batch norm, a spiking readout.
CUBA = {
    "subtract": dict(neuron="cuba"),
    "zero-at-once": dict(neuron="cuba", reset="zero", reset_delay=False),
    "recurrent": dict(neuron="cuba", alpha=0.6, recurrent=True, bias=True, batch_norm=True),
    "spiking-readout": dict(neuron="cuba", spiking_output=True, beta=0.85),
    "lif-zero-at-once": dict(neuron="lif", reset="zero", reset_delay=False),
}


def spikes_in(steps=40, batch=4, inputs=4, seed=1, rate=0.3):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, inputs, generator=generator) < rate).float()


def cuba_network(case: str) -> SpatialSNN:
    torch.manual_seed(0)
    net = SpatialSNN(4, 3, [12, 8], max_delay=5, init_gain=3.0, **CUBA[case])
    if net.hidden[0].norm is not None:  # statistics other than the initial ones
        net.train()
        net(spikes_in(seed=7))
    return net.eval()


@pytest.mark.parametrize("case", CUBA)
def test_spsnn_cuba_networks_round_trip(case, tmp_path):
    net = cuba_network(case)
    path = tmp_path / "cuba.nir"
    nir.write(path, to_nir(net))
    graph = nir.read(path)
    hidden = graph.nodes["hidden_0"]
    if case.startswith("lif"):
        assert isinstance(hidden, nir.LIF)
    else:
        assert isinstance(hidden, nir.CubaLIF)
        assert np.allclose(1 - 1e-3 / hidden.tau_syn, net.hidden[0].neuron.constant("alpha"))
    timing = "same_step" if "at-once" in case else "previous_step"
    assert hidden.metadata["reset_timing"] == timing
    imported = from_nir(graph)
    assert imported.neuron_family == net.neuron_family
    x = spikes_in()
    with torch.no_grad():
        want = deployment_network(net)[0].run(x)
        got = imported.run(x)
    assert 0.02 < float(want.hidden_spikes[0].mean()) < 0.7
    for ours, theirs in zip(got.hidden_spikes, want.hidden_spikes, strict=True):
        assert torch.equal(ours, theirs)
    torch.testing.assert_close(got.membrane, want.membrane, rtol=0, atol=1e-5)


def test_adaptive_neurons_are_refused_saying_why():
    net = SpatialSNN(4, 3, [6], neuron="adlif")
    with pytest.raises(ValueError, match=r"adaptive LIF neurons .* have no NIR form.*only spikes"):
        to_nir(net)


def snntorch_synaptic_network():
    """snnTorch's usual net with Synaptic neurons (its exporter needs per-neuron tensors)."""
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 6),
        snn.Synaptic(alpha=torch.full((6,), 0.7), beta=torch.full((6,), 0.9),
                     threshold=torch.ones(6), init_hidden=True),
        torch.nn.Linear(6, 3),
        snn.Synaptic(alpha=torch.full((3,), 0.7), beta=torch.full((3,), 0.9),
                     threshold=torch.ones(3), init_hidden=True, output=True),
    )  # fmt: skip
    with torch.no_grad():
        net[0].weight.mul_(2.0)
    return net


def test_a_graph_of_snntorch_s_synaptic_runs_as_snntorch_runs_it():
    """snnTorch writes CubaLIF with w_in = tau_syn / dt, r = tau_mem / dt, no dt and no
    reset: read with dt = 1e-4 s (its exporter's) and reset='subtract' (Synaptic's)."""
    export_nir = pytest.importorskip("snntorch.export_nir")
    net = snntorch_synaptic_network()
    graph = export_nir.export_to_nir(net, torch.zeros(4))
    assert isinstance(graph.nodes["1"], nir.CubaLIF)
    imported = from_nir(graph, dt=1e-4, reset="subtract")
    assert imported.neuron_family == "cuba" and imported.spiking_output
    x = spikes_in(steps=60, batch=8, rate=0.4)
    assert_runs_as_snntorch(net, imported, x)


def norse_network(cell: str):
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(0)
    neuron = {"LIFCell": norse.LIFCell, "LIFBoxCell": norse.LIFBoxCell}[cell]()
    module = norse.SequentialState(
        torch.nn.Linear(4, 6), neuron, torch.nn.Linear(6, 3), norse.LIBoxCell()
    )
    with torch.no_grad():
        module[0].weight.mul_(8.0 if cell == "LIFCell" else 25.0)
    return norse, module


@pytest.mark.parametrize("cell", ["LIFCell", "LIFBoxCell"])
def test_graphs_norse_writes_import_with_norse_s_convention(cell):
    """Norse's to_nir writes tau = dt / tau_inv (no dt) and its cells reset to v_reset at
    once; LIFCell becomes CubaLIF, whose current takes its input with gain 1. Read with
    dt = 1e-3 s (Norse's) and convention='norse': Norse's spikes, 0 mismatches."""
    norse, module = norse_network(cell)
    graph = norse.to_nir(module, torch.zeros(1, 4))
    kind = nir.CubaLIF if cell == "LIFCell" else nir.LIF
    assert isinstance(graph.nodes["1"], kind)
    with pytest.raises(ValueError, match="convention='norse'"):
        from_nir(graph, dt=1e-3, reset="zero")
    imported = from_nir(graph, dt=1e-3, convention="norse")
    assert imported.neuron_family == ("cuba" if cell == "LIFCell" else "lif")
    assert imported.neuron_arguments["reset"] == "zero"
    assert not imported.neuron_arguments["reset_delay"]
    x = spikes_in(steps=80, batch=16, rate=0.4)
    hidden = []
    module[1].register_forward_hook(lambda m, args, out: hidden.append(out[0]))
    state, readout = None, []
    with torch.no_grad():
        for x_t in x:
            out, state = module(x_t, state)
            readout.append(out)
        ours = imported.run(x)
    theirs = torch.stack(hidden)
    assert 0.05 < float(theirs.mean()) < 0.6
    assert int((ours.hidden_spikes[0] != theirs).sum()) == 0
    torch.testing.assert_close(ours.membrane, torch.stack(readout), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", ["subtract", "zero-at-once", "recurrent", "lif-zero-at-once"])
@pytest.mark.parametrize("framework", ["snntorch", "norse"])
def test_spsnn_cuba_graphs_run_in_snntorch_and_norse(framework, case):
    node_map = {"snntorch": snntorch_node_map, "norse": norse_node_map}[framework]
    pytest.importorskip(framework)
    net = cuba_network(case)
    graph = to_nir(net)
    x = spikes_in(steps=50, batch=8)
    with torch.no_grad():
        want = deployment_network(net)[0].run(x).hidden_spikes
    _, got = run_imported(graph, node_map, x)
    for ours, theirs in zip(want, got, strict=True):
        assert 0.02 < float(ours.mean()) < 0.7
        assert int((ours != theirs).sum()) == 0
