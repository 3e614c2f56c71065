"""from_nir on bad input: files that are not NIR, graphs a SpatialSNN cannot run: ValueErrors."""

from __future__ import annotations

import h5py
import nir
import numpy as np
import pytest
import torch

from spatial_layers.nir import from_nir, to_nir
from tests.helpers.export import assert_runs_as_snntorch, make_net, rounded, spike_input


def graph_of(case: str = "spatial", **kwargs) -> nir.NIRGraph:
    return to_nir(make_net(case), **kwargs)


def rebuilt(graph: nir.NIRGraph, nodes=None, edges=None, metadata=None) -> nir.NIRGraph:
    """The graph with nodes / edges / metadata replaced, unchecked (as a foreign writer might)."""
    return nir.NIRGraph(
        nodes=dict(graph.nodes) if nodes is None else nodes,
        edges=list(graph.edges) if edges is None else edges,
        metadata=dict(graph.metadata) if metadata is None else metadata,
        type_check=False,
    )


def write(graph: nir.NIRGraph, path):
    nir.write(path, graph)
    return path


def test_a_text_file_is_not_nir(tmp_path):
    path = tmp_path / "model.nir"
    path.write_text("this is not HDF5\n")
    with pytest.raises(ValueError, match=r"not a NIR file.*HDF5"):
        from_nir(path)


def test_an_hdf5_file_without_a_graph(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("spikes", data=np.zeros(3))
    with pytest.raises(ValueError, match="holds no NIR graph"):
        from_nir(path)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no NIR file"):
        from_nir(tmp_path / "absent.nir")


def test_a_graph_whose_edges_name_a_missing_node(tmp_path):
    graph = graph_of()
    nodes = {name: node for name, node in graph.nodes.items() if name != "hidden_0"}
    path = write(rebuilt(graph, nodes=nodes), tmp_path / "g.nir")
    with pytest.raises(ValueError, match="hidden_0"):
        from_nir(path)
    with pytest.raises(ValueError, match="'hidden_0' that the graph does not have"):
        from_nir(rebuilt(graph, nodes=nodes))


def test_a_linear_whose_shape_does_not_match(tmp_path):
    graph = graph_of()
    nodes = dict(graph.nodes)
    nodes["layers_1_linear0"] = nir.Linear(weight=np.ones((6, 8), np.float32))  # hidden_0 has 7
    with pytest.raises(ValueError, match=r"layers_1_linear0.*shape \(6, 8\), expected \(6, 7\)"):
        from_nir(rebuilt(graph, nodes=nodes))
    with pytest.raises(ValueError, match="layers_1_linear0"):
        from_nir(write(rebuilt(graph, nodes=nodes), tmp_path / "g.nir"))


def test_missing_input_output_or_neuron_nodes():
    graph = graph_of("none")
    no_output = {n: node for n, node in graph.nodes.items() if n != "output"}
    edges = [e for e in graph.edges if "output" not in e]
    with pytest.raises(ValueError, match=r"exactly one nir\.Output node, found no"):
        from_nir(rebuilt(graph, nodes=no_output, edges=edges))
    # a population without neuron node: the last Linear feeds the Output directly
    nodes = {n: node for n, node in graph.nodes.items() if n != "readout"}
    edges = [(a, "output" if b == "readout" else b) for a, b in graph.edges if a != "readout"]
    with pytest.raises(ValueError, match=r"'layers_2_linear0' must feed exactly one neuron node"):
        from_nir(rebuilt(graph, nodes=nodes, edges=edges))
    no_input = {n: node for n, node in graph.nodes.items() if n != "input"}
    edges = [e for e in graph.edges if "input" not in e]
    with pytest.raises(ValueError, match=r"exactly one nir\.Input node, found no"):
        from_nir(rebuilt(graph, nodes=no_input, edges=edges))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda n: n.tau.__setitem__(0, n.tau[0] * 2), "per-neuron different tau"),
        (lambda n: n.v_threshold.__setitem__(1, 2.0), "per-neuron different v_threshold"),
        (lambda n: n.v_leak.fill(0.1), "v_leak != 0"),
        (lambda n: n.v_reset.fill(-0.5), "v_reset != 0"),
        (lambda n: n.r.fill(0.0), "input gain"),
        (
            lambda n: n.metadata.pop("reset"),
            "'hidden_1' does not state its reset .*reset='subtract'",
        ),
        (lambda n: n.metadata.update(reset="soft"), "'hidden_1' states reset='soft'"),
    ],
)
def test_neuron_parameters_a_spatial_snn_cannot_represent(change, message):
    graph = graph_of()
    change(graph.nodes["hidden_1"])
    with pytest.raises(ValueError, match=message):
        from_nir(graph)


def test_unsupported_node_types_and_hidden_populations_that_do_not_spike():
    graph = graph_of()
    nodes = dict(graph.nodes)
    size = 7
    nodes["hidden_0"] = nir.CubaLI(
        tau_syn=np.ones(size),
        tau_mem=np.ones(size),
        r=np.ones(size),
        v_leak=np.zeros(size),
    )
    with pytest.raises(ValueError, match=r"nir\.CubaLI;"):
        from_nir(rebuilt(graph, nodes=nodes))
    tau = graph.nodes["hidden_0"].tau
    nodes["hidden_0"] = nir.LI(tau=tau, r=np.ones(size), v_leak=np.zeros(size))
    with pytest.raises(ValueError, match="hidden neurons must spike"):
        from_nir(rebuilt(graph, nodes=nodes))


def test_a_synapse_at_two_delays_and_an_instant_recurrent_loop():
    graph = graph_of("free")
    nodes = dict(graph.nodes)
    delayed = sorted(
        n for n in nodes if n.startswith("layers_0_linear") and n != "layers_0_linear0"
    )
    nodes[delayed[0]] = nir.Linear(weight=np.ones_like(nodes[delayed[0]].weight))
    with pytest.raises(ValueError, match=r"non-zero weights at delays .* one delay"):
        from_nir(rebuilt(graph, nodes=nodes))
    graph = graph_of("recurrent")  # recurrent branches wired without their Delay nodes
    delays = {
        n
        for n, node in graph.nodes.items()
        if isinstance(node, nir.Delay) and n.startswith("recurrent_layers_0")
    }
    nodes = {n: node for n, node in graph.nodes.items() if n not in delays}
    edges = [("hidden_0", b) if a in delays else (a, b) for a, b in graph.edges if b not in delays]
    with pytest.raises(ValueError, match="loop within one step"):
        from_nir(rebuilt(graph, nodes=nodes, edges=edges))


def test_fractional_delays_and_a_missing_dt():
    graph = graph_of("free")
    name = next(n for n, node in graph.nodes.items() if isinstance(node, nir.Delay))
    graph.nodes[name].delay[:] += 0.4e-3
    with pytest.raises(ValueError, match="whole, non-negative steps"):
        from_nir(graph)
    graph = graph_of()
    metadata = {k: v for k, v in graph.metadata.items() if k != "dt"}
    with pytest.raises(ValueError, match="no 'dt'"):
        from_nir(rebuilt(graph, metadata=metadata))
    with pytest.raises(ValueError, match=r"exported with dt=0\.001"):
        from_nir(graph, dt=2e-3)
    x = spike_input()
    imported = from_nir(rebuilt(graph, metadata=metadata), dt=1e-3)
    assert torch.equal(imported.run(x).membrane, rounded(make_net("spatial")).run(x).membrane)


def test_a_minimal_foreign_graph_without_metadata_imports():
    """Per-channel Delay, no branch metadata, no masks: still a SpatialSNN with the same numbers."""
    dt, beta = 1e-3, 0.8
    tau = dt / (1 - beta)
    w1 = np.array([[0.9, 0.0], [0.0, 1.7], [1.2, 0.4]], np.float32)
    w2 = np.array([[1.0, -0.5, 0.7]], np.float32)
    nodes = {
        "in": nir.Input(input_type=np.array([2])),
        "d": nir.Delay(delay=np.array([2 * dt, 0.0])),
        "w1": nir.Linear(weight=w1),
        "lif": nir.LIF(
            tau=np.full(3, tau),
            r=np.full(3, tau / dt),
            v_leak=np.zeros(3),
            v_threshold=np.ones(3),
            metadata={"reset": "subtract", "reset_timing": "previous_step"},
        ),
        "w2": nir.Linear(weight=w2),
        "li": nir.LI(tau=np.full(1, tau), r=np.full(1, tau / dt), v_leak=np.zeros(1)),
        "out": nir.Output(output_type=np.array([1])),
    }
    edges = [("in", "d"), ("d", "w1"), ("w1", "lif"), ("lif", "w2"), ("w2", "li"), ("li", "out")]
    net = from_nir(nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt}))
    layer = net.layers[0]
    np.testing.assert_array_equal(layer.free_delays.detach().numpy(), [[2, 0], [0, 0], [2, 0]])
    np.testing.assert_array_equal(layer.mask.numpy(), w1 != 0)
    assert net.params.beta == pytest.approx(beta) and net.readout_beta == pytest.approx(beta)
    x = torch.zeros(6, 1, 2)
    x[0, 0, 0] = 1.0  # channel 0 arrives 2 steps later at neurons 0 and 2
    x[1, 0, 1] = 1.0
    currents = net.layers[0](x)[:, 0]
    assert currents[2].tolist() == pytest.approx([0.9, 0.0, 1.2])
    assert currents[1].tolist() == pytest.approx([0.0, 1.7, 0.4])


# --- graphs of other exporters and standard NIR ------------------------------------------------


def snntorch_network():
    """snnTorch's usual net; its exporter needs per-neuron beta and threshold tensors."""
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 6),
        snn.Leaky(beta=torch.full((6,), 0.9), threshold=torch.ones(6), init_hidden=True),
        torch.nn.Linear(6, 3),
        snn.Leaky(
            beta=torch.full((3,), 0.8), threshold=torch.ones(3), init_hidden=True, output=True
        ),
    )
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    return net


def test_a_graph_of_snntorch_s_exporter_runs_as_snntorch_runs_it():
    """snnTorch writes r = tau / dt, per-neuron parameters, no dt and no reset; its Leaky
    subtracts the threshold one step late, which the caller states with reset='subtract'."""
    export_nir = pytest.importorskip("snntorch.export_nir")
    import spatial_layers

    net = snntorch_network()
    graph = export_nir.export_to_nir(net, torch.zeros(4))
    with pytest.raises(ValueError, match="no 'dt'"):
        from_nir(graph)
    with pytest.raises(ValueError, match=r"LIF '1' does not state its reset.*reset='subtract'"):
        from_nir(graph, dt=1e-4)  # snnTorch's exporter assumes dt = 1e-4 s
    imported = from_nir(graph, dt=1e-4, reset="subtract")
    x = (torch.rand(40, 5, 4, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    hidden = []
    net[1].register_forward_hook(lambda module, args, out: hidden.append(out))
    spatial_layers.reset(net)
    with torch.no_grad():
        spikes, membranes = (torch.stack(v) for v in zip(*(net(x_t) for x_t in x), strict=True))
        ours = imported.run(x)
    assert 0.05 < float(ours.hidden_spikes[0].mean()) < 0.5 and ours.spikes.any()
    assert torch.equal(ours.hidden_spikes[0], torch.stack(hidden))
    assert torch.equal(ours.spikes, spikes)
    torch.testing.assert_close(ours.membrane, membranes, rtol=0, atol=1e-6)


def test_a_graph_of_norse_s_exporter_is_read_up_to_its_reset():
    """Norse writes Input [1, C], scalar parameters, r = 1 and no dt; its LIFBox resets to
    v_reset at once, which a SpatialSNN cannot run: refused, naming the node."""
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(0)
    module = norse.SequentialState(
        torch.nn.Linear(4, 6), norse.LIFBoxCell(), torch.nn.Linear(6, 3), norse.LIBoxCell()
    )
    graph = norse.to_nir(module, torch.zeros(1, 4))
    assert graph.nodes["input"].input_type["input"].tolist() == [1, 4]
    assert np.ndim(graph.nodes["1"].tau) == 0 and graph.nodes["1"].r == 1
    dt = 1e-6  # Norse writes tau = dt / tau_mem_inv = 1e-5 s: decay 0.9 per step of 1 us
    with pytest.raises(ValueError, match=r"LIF '1' does not state its reset"):
        from_nir(graph, dt=dt)
    net = from_nir(graph, dt=dt, reset="subtract")  # if the caller vouches for it
    assert (net.num_inputs, net.hidden_sizes, net.num_classes) == (4, [6], 3)
    assert net.params.beta == pytest.approx(0.9, rel=1e-6)
    gain = dt / float(graph.nodes["1"].tau)  # r * dt / tau, folded into the weights
    for layer, linear in zip(net.layers, (module[0], module[2]), strict=True):
        torch.testing.assert_close(layer.weight, linear.weight * gain, rtol=1e-6, atol=0)
        torch.testing.assert_close(layer.bias, linear.bias * gain, rtol=1e-6, atol=0)


def with_metadata(**changes) -> nir.NIRGraph:
    graph = graph_of()
    return rebuilt(graph, metadata={**graph.metadata, **changes})


def with_node_metadata(node: str, **changes) -> nir.NIRGraph:
    graph = graph_of()
    graph.nodes[node].metadata.update(changes)
    return graph


def with_weight(weight) -> nir.NIRGraph:
    graph = graph_of()
    graph.nodes["layers_0_linear0"] = nir.Linear(
        weight=weight(graph.nodes["layers_0_linear0"].weight),
        metadata=graph.nodes["layers_0_linear0"].metadata,
    )
    return graph


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        # graph metadata: True is not 1 s, "x" is not a number, a max_delay is whole
        (lambda: with_metadata(dt=True), r"metadata 'dt' holds booleans \(True\)"),
        (lambda: with_metadata(dt="x"), r"metadata 'dt' holds text"),
        (lambda: with_metadata(dt=1e-3 + 1e-4j), r"metadata 'dt' holds complex numbers"),
        (lambda: with_metadata(dt=np.array([1e-3, 1e-3])), r"'dt' has shape \(2,\)"),
        (lambda: with_metadata(surrogate_alpha="x"), r"metadata 'surrogate_alpha' holds text"),
        (lambda: with_metadata(surrogate_alpha=True), r"'surrogate_alpha' holds booleans"),
        (lambda: with_metadata(max_delay=2.7), r"'max_delay' is 2.7; it must be a whole"),
        (lambda: with_metadata(max_delay=True), r"'max_delay' holds booleans"),
        # node metadata: named by node and key
        (lambda: with_node_metadata("hidden_0", beta="x"), r"'beta' of node 'hidden_0' holds text"),
        (
            lambda: with_node_metadata("hidden_1", beta=True),
            r"'beta' of node 'hidden_1' holds bool",
        ),
        (
            lambda: with_node_metadata("hidden_0", beta=np.array([0.9, 0.8])),
            r"'beta' of node 'hidden_0' must be one number or one per neuron, all equal",
        ),
        (
            lambda: with_node_metadata("hidden_0", coords=np.full((7, 2), np.nan)),
            r"coords metadata of 'hidden_0' holds non-finite values",
        ),
        (
            lambda: with_node_metadata("hidden_0", reset=np.array(["subtract"])),
            r"'reset' of node 'hidden_0' is 'subtract' in an array of shape \(1,\); it must be",
        ),
        (lambda: with_node_metadata("hidden_0", coords=np.ones((7, 2), complex)), "complex"),
        # arrays: complex weights lose nothing silently, text is not parsed, bools are not 1
        (lambda: with_weight(lambda w: w + 0j), r"weight of node 'layers_0_linear0' holds complex"),
        (lambda: with_weight(lambda w: w.astype(str)), r"'layers_0_linear0' holds text"),
    ],
)
def test_metadata_and_arrays_that_are_not_real_numbers_are_refused_naming_node_and_key(
    graph, message
):
    with pytest.raises(ValueError, match=message) as error:
        from_nir(graph())
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda n: setattr(n, "tau", n.tau.astype(str)), r"tau of LIF 'hidden_0' holds text"),
        (lambda n: setattr(n, "tau", n.tau + 0j), r"tau of LIF 'hidden_0' holds complex"),
        (
            lambda n: setattr(n, "v_threshold", n.v_threshold > 0),
            r"v_threshold of LIF 'hidden_0' holds booleans",
        ),
    ],
)
def test_neuron_parameters_that_are_not_real_numbers_are_refused(change, message):
    graph = graph_of()
    change(graph.nodes["hidden_0"])
    with pytest.raises(ValueError, match=message):
        from_nir(graph)


def test_a_mask_of_other_values_than_0_and_1_is_refused():
    graph = graph_of()
    record = graph.metadata["layers"]["layers_0"]
    record["mask"] = np.asarray(record["mask"]) * 0.5
    with pytest.raises(ValueError, match=r"mask metadata of layer 'layers_0' holds values other"):
        from_nir(graph)


def test_a_one_element_dt_and_per_neuron_equal_beta_metadata_read_as_their_number():
    graph = graph_of()
    reference = from_nir(graph)
    size = graph.nodes["hidden_0"].tau.shape[0]
    beta = graph.nodes["hidden_0"].metadata["beta"]
    graph.nodes["hidden_0"].metadata["beta"] = np.full(size, beta)
    graph.nodes["hidden_1"].metadata["beta"] = np.full(size, beta)
    net = from_nir(rebuilt(graph, metadata={**graph.metadata, "dt": np.array([1e-3])}))
    assert net.params.beta == reference.params.beta  # the stored float, exactly
    x = spike_input(seed=3)
    assert torch.equal(net.run(x).membrane, reference.run(x).membrane)


@pytest.mark.parametrize("mechanism", ["zero", "none"])
def test_snntorch_leaky_with_a_zero_or_no_reset_runs_as_snntorch_runs_it(mechanism):
    """snnTorch's reset_mechanism='zero' zeroes the membrane before the next step's decay:
    the spikes of a reset to 0 in the step of the spike (reset='zero'); 'none': reset='none'.
    Hidden and spiking readout, 0 mismatches against snnTorch's own run."""
    snn = pytest.importorskip("snntorch")
    export_nir = pytest.importorskip("snntorch.export_nir")

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 6),
        snn.Leaky(beta=torch.full((6,), 0.9), threshold=torch.ones(6), init_hidden=True,
                  reset_mechanism=mechanism),
        torch.nn.Linear(6, 3),
        snn.Leaky(beta=torch.full((3,), 0.9), threshold=torch.ones(3), init_hidden=True,
                  output=True, reset_mechanism=mechanism),
    )  # fmt: skip
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    imported = from_nir(export_nir.export_to_nir(net, torch.zeros(4)), dt=1e-4, reset=mechanism)
    x = (torch.rand(60, 8, 4, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    assert_runs_as_snntorch(net, imported, x)


def test_a_node_norse_could_not_export_is_named_with_the_fix():
    norse = pytest.importorskip("norse.torch")
    module = norse.SequentialState(
        torch.nn.Linear(4, 6), norse.LIFBoxCell(), torch.nn.Linear(6, 3), norse.LICell()
    )
    graph = norse.to_nir(module, torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"node '3' is None: .*use LIBoxCell"):
        from_nir(graph, dt=1e-3, convention="norse")
