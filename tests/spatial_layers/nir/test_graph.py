"""to_nir / from_nir: exact round trips through the HDF5 file, the graph's meaning, its layout."""

from __future__ import annotations

import math
from fractions import Fraction

import nir
import numpy as np
import pytest
import torch

from spatial_layers import SpatialDelay
from spatial_layers.networks.deploy import DelayedConnection, deployment_network
from spatial_layers.neurons import leaky_step
from spatial_layers.nir import from_nir, parse_nir, to_nir, write_nir
from spatial_layers.nir.conventions import input_gain, membrane_tau
from spatial_layers.nir.graph import delay_branches, exported_layer
from tests.helpers.export import CASES, MAX_DELAY, make_net, rounded, simulate_nir, spike_input
from tests.helpers.probes import differing_keys, state_copy


def through_file(graph: nir.NIRGraph, tmp_path) -> nir.NIRGraph:
    path = tmp_path / "net.nir"
    nir.write(path, graph)
    return nir.read(path)


def half_up(delays: torch.Tensor) -> np.ndarray:
    """Independent half-up rounding: float32 + 0.5 is exact in float64."""
    return np.floor(delays.detach().double().numpy() + 0.5).astype(np.int64)


def assert_spiking(spikes: list[torch.Tensor]) -> None:
    """The comparison means something only if neurons both fire and stay silent."""
    for s in spikes:
        assert 0.02 < float(s.detach().mean()) < 0.9


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_through_the_file_is_exact(case, tmp_path):
    net = make_net(case)
    imported = from_nir(through_file(to_nir(net), tmp_path))
    x = spike_input()
    expected, got = rounded(net).run(x), imported.run(x)
    assert_spiking(expected.hidden_spikes)
    for ours, theirs in zip(expected.hidden_spikes, got.hidden_spikes, strict=True):
        assert torch.equal(ours, theirs)
    if case == "batch_norm":  # folding changes the float rounding, nothing else
        torch.testing.assert_close(got.membrane, expected.membrane, rtol=0, atol=1e-6)
    else:
        assert torch.equal(got.membrane, expected.membrane)
    if case == "spiking_readout":
        assert torch.equal(got.spikes, expected.spikes) and expected.spikes.any()
    assert imported.delay_mode == "free" and not imported.training
    assert all(layer.kernel_kind == "round" for layer in imported.delay_layers())


def test_imported_network_streams_step_by_step(tmp_path):
    net = make_net("spatial")
    imported = from_nir(through_file(to_nir(net), tmp_path))
    x = spike_input()
    expected = rounded(net).run(x)
    membranes = [torch.zeros(x.shape[1], h) for h in imported.hidden_sizes]
    readout = torch.zeros(x.shape[1], imported.num_classes)
    hidden_spikes, readout_trace = [[] for _ in membranes], []
    for layer in imported.delay_layers():
        layer.reset_state()
    for x_t in x:
        signal = x_t
        for index, layer in enumerate(imported.layers[:-1]):
            signal, membranes[index] = leaky_step(
                layer.step(signal), membranes[index], imported.params
            )
            hidden_spikes[index].append(signal)
        readout = imported.readout_beta * readout + imported.layers[-1].step(signal)
        readout_trace.append(readout)
    for ours, steps in zip(expected.hidden_spikes, hidden_spikes, strict=True):
        assert torch.equal(torch.stack(steps), ours)
    torch.testing.assert_close(torch.stack(readout_trace), expected.membrane, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "case", ["spatial", "masked_dale", "batch_norm", "recurrent", "spiking_readout"]
)
def test_naive_simulation_of_the_graph_equals_the_rounded_network(case, tmp_path):
    """The graph means what the docs say: simulated from its nodes alone, it gives our spikes."""
    net = make_net(case).double()
    x = spike_input().double()
    expected = rounded(net).run(x)
    graph = through_file(to_nir(net), tmp_path)
    outputs, membranes = simulate_nir(graph, x.numpy())
    for index, ours in enumerate(expected.hidden_spikes):
        np.testing.assert_array_equal(outputs[f"hidden_{index}"], ours.numpy())
    np.testing.assert_allclose(membranes["readout"], expected.membrane.numpy(), rtol=0, atol=1e-9)
    if case == "spiking_readout":
        np.testing.assert_array_equal(outputs["output"], expected.spikes.numpy())
    assert_spiking(expected.hidden_spikes)


def test_naive_simulation_with_nir_reset_differs(tmp_path):
    """The reset convention in the metadata matters: NIR's reset-to-zero gives other spikes."""
    net = make_net("spatial").double()
    x = spike_input(rate=0.5).double()
    graph = to_nir(net)
    for name in ("hidden_0", "hidden_1"):
        graph.nodes[name].metadata["reset"] = "to_v_reset"
    outputs, _ = simulate_nir(graph, x.numpy())
    expected = rounded(net).run(x)
    assert not all(
        np.array_equal(outputs[f"hidden_{i}"], s.numpy())
        for i, s in enumerate(expected.hidden_spikes)
    )


def distinct_delays(layer) -> set[int]:
    delays = half_up(layer.delays())
    return set(delays[layer.mask.numpy()].tolist())


def nodes_of(graph: nir.NIRGraph, layer: str, kind: type) -> dict[str, nir.NIRNode]:
    return {
        name: node
        for name, node in graph.nodes.items()
        if isinstance(node, kind) and node.metadata.get("layer") == layer
    }


@pytest.mark.parametrize("case", ["spatial", "masked_dale", "recurrent"])
def test_one_branch_per_distinct_delay(case, tmp_path):
    net = make_net(case)
    graph = through_file(to_nir(net, dt=5e-4), tmp_path)
    layers = {f"layers_{i}": layer for i, layer in enumerate(net.layers)}
    layers |= {f"recurrent_layers_{i}": layer for i, layer in enumerate(net.recurrent_layers)}
    for name, layer in layers.items():
        latency = 1 if name.startswith("recurrent") else 0
        expected = {d + latency for d in distinct_delays(layer)}
        delay_nodes = nodes_of(graph, name, nir.Delay)
        branches = nodes_of(graph, name, nir.Linear) | nodes_of(graph, name, nir.Affine)
        assert len(delay_nodes) == len(expected - {0})
        assert len(branches) == len(expected) <= MAX_DELAY + 1 + latency
        steps = sorted(round(float(n.delay[0]) / 5e-4) for n in delay_nodes.values())
        assert steps == sorted(expected - {0})
        for node in delay_nodes.values():
            assert node.delay.shape == (layer.in_features,) and np.ptp(node.delay) == 0
        gain = graph.metadata["layers"][name]["input_gain"]
        total = sum(np.asarray(b.weight, np.float64) for b in branches.values()) * gain
        want = layer.effective_weight().detach().double().numpy()
        np.testing.assert_array_equal(total.astype(np.float32), want)  # exact in float32
        biases = [b for b in branches.values() if isinstance(b, nir.Affine)]
        assert len(biases) == (layer.bias is not None)


def half_up_exact(value: float) -> int:
    return math.floor(Fraction(value) + Fraction(1, 2))


def boundary_delays() -> torch.Tensor:
    values = []
    for k in range(8):
        half = np.float32(k + 0.5)
        values += [half, np.nextafter(half, np.float32(0)), np.nextafter(half, np.float32(20))]
    values += [np.float32(0.49999997), np.float32(0.0), np.float32(3.0)]
    return torch.tensor(np.array(values, dtype=np.float32))


def free_layer_with(delays: torch.Tensor) -> SpatialDelay:
    """One input, ``len(delays)`` outputs, synapse i with free delay ``delays[i]``, weight 1."""
    layer = SpatialDelay(1, delays.numel(), max_delay=10, kernel="round", delays="free")
    with torch.no_grad():
        layer.free_delays.copy_(delays[:, None])
        layer.weight.fill_(1.0)
    return layer


def exported_delays(delays: torch.Tensor) -> np.ndarray:
    layer = free_layer_with(delays)
    return exported_layer(DelayedConnection("layers_0", 0, 1, False, layer)).delays[:, 0]


def test_exported_integer_delays_round_halves_up():
    delays = boundary_delays()
    got = exported_delays(delays)
    assert got.tolist() == [half_up_exact(float(d)) for d in delays]
    assert got.dtype == np.int64
    assert exported_delays(torch.tensor([0.5, 1.5, 2.5])).tolist() == [1, 2, 3]  # not to even


def test_exported_integer_delays_are_where_the_round_kernel_puts_the_spike():
    delays = boundary_delays()
    impulse = torch.zeros(12, 1, 1)
    impulse[0] = 1.0
    arrival = free_layer_with(delays)(impulse)[:, 0, :].argmax(dim=0)  # step of each spike
    assert arrival.tolist() == exported_delays(delays).tolist()


def test_a_layer_whose_delays_all_round_to_zero_has_no_delay_node():
    net = make_net("free")
    with torch.no_grad():
        net.layers[0].free_delays.uniform_(0.0, 0.49)
        net.layers[1].free_delays.uniform_(0.51, 3.4)
    graph = to_nir(net)
    assert not nodes_of(graph, "layers_0", nir.Delay)
    assert len(nodes_of(graph, "layers_0", nir.Linear)) == 1
    assert nodes_of(graph, "layers_1", nir.Delay)
    net_none = to_nir(make_net("none"))
    assert not any(isinstance(n, nir.Delay) for n in net_none.nodes.values())


def test_branches_split_a_layer_by_delay():
    weight = np.arange(1.0, 7.0).reshape(2, 3)
    delays = np.array([[0, 2, 2], [1, 0, 2]])
    mask = np.array([[True, True, False], [True, True, True]])
    branches = delay_branches(weight, delays, mask)
    assert [k for k, _ in branches] == [0, 1, 2]
    np.testing.assert_array_equal(branches[2][1], [[0, 2, 0], [0, 0, 6]])
    np.testing.assert_array_equal(sum(b for _, b in branches), weight * mask)
    (empty,) = delay_branches(weight, delays, np.zeros((2, 3), bool), empty_delay=1)
    assert empty[0] == 1 and not empty[1].any()


def test_neurons_have_unit_r_and_the_weights_carry_the_euler_gain():
    """NIR's documented convention (r = 1): Euler's input gain dt / tau sits in the weights."""
    tau = membrane_tau(0.9, 2e-3)
    assert 1 - 2e-3 / tau == pytest.approx(0.9, abs=1e-12)
    assert input_gain(0.9, 2e-3) == pytest.approx(0.1, abs=1e-12)
    assert input_gain(1.0, 2e-3) == 2e-3  # IF / I: v += dt * r * I
    net = make_net("masked_dale")
    graph = to_nir(net, dt=2e-3)
    lif, li = graph.nodes["hidden_0"], graph.nodes["readout"]
    assert isinstance(lif, nir.LIF) and isinstance(li, nir.LI)
    np.testing.assert_allclose(lif.tau, tau)
    assert (lif.r == 1).all() and (li.r == 1).all()
    assert not lif.v_leak.any() and not lif.v_reset.any() and (lif.v_threshold == 1.0).all()
    assert lif.metadata["reset"] == "subtract"
    assert lif.metadata["reset_timing"] == "previous_step"
    deployed, _ = deployment_network(net)
    for index, layer in enumerate(deployed.layers):
        branches = {**nodes_of(graph, f"layers_{index}", nir.Linear)}
        branches.update(nodes_of(graph, f"layers_{index}", nir.Affine))
        total = sum(np.asarray(b.weight) for b in branches.values())
        assert total.dtype == np.float64
        weight = layer.effective_weight().detach().double().numpy()
        np.testing.assert_allclose(total * 0.1, weight, rtol=1e-12, atol=0)
        (affine,) = nodes_of(graph, f"layers_{index}", nir.Affine).values()
        np.testing.assert_allclose(affine.bias * 0.1, layer.bias.double().numpy(), rtol=1e-12)
        assert graph.metadata["layers"][f"layers_{index}"]["input_gain"] == pytest.approx(0.1)


def test_coordinates_signs_and_scales_survive_the_file(tmp_path):
    net = make_net("masked_dale")
    graph = through_file(to_nir(net, weight_bits=6, readout="max"), tmp_path)
    for index, name in enumerate(["input", "hidden_0", "hidden_1", "readout"]):
        coords = net.positions[index].coords.detach().numpy()
        np.testing.assert_array_equal(graph.nodes[name].metadata["coords"], coords)
    for index, layer in enumerate(net.layers):
        for branch in nodes_of(graph, f"layers_{index}", nir.Linear).values():
            np.testing.assert_array_equal(branch.metadata["sign"], layer.sign.numpy())
        record = graph.metadata["layers"][f"layers_{index}"]
        np.testing.assert_array_equal(record["mask"], layer.mask.numpy())
        scale = layer.effective_weight().abs().max().item() / 31
        assert float(record["weight_scale"]) == pytest.approx(scale, rel=1e-6)
    meta = graph.metadata
    assert float(meta["dt"]) == 1e-3 and int(meta["weight_bits"]) == 6
    assert (
        meta["readout"] == "max" and meta["spsnn_version"] and "half up" in meta["delay_rounding"]
    )
    imported = from_nir(graph)
    parsed = parse_nir(graph)
    names = ["input", "hidden_0", "hidden_1", "readout"]
    assert [population.name for population in parsed.populations] == names
    for population, positions in zip(parsed.populations, net.positions, strict=True):
        np.testing.assert_array_equal(population.coords, positions.coords.detach().numpy())
    for ours, theirs in zip(net.layers, imported.layers, strict=True):
        assert torch.equal(theirs.sign, ours.sign) and torch.equal(theirs.mask, ours.mask)
        assert bool((theirs.effective_weight() * theirs.sign >= 0).all())


def test_quantised_export_equals_the_quantised_original(tmp_path):
    net = make_net("batch_norm")
    imported = from_nir(through_file(to_nir(net, weight_bits=4), tmp_path))
    deployed, scales = deployment_network(net, weight_bits=4)
    x = spike_input()
    expected, got = deployed.run(x), imported.run(x)
    assert torch.equal(got.membrane, expected.membrane)
    for layer, name in zip(imported.layers, ["layers_0", "layers_1", "layers_2"], strict=True):
        codes = layer.effective_weight().detach().double() / scales[name]
        assert codes.unique().numel() <= 15
        torch.testing.assert_close(codes, codes.round(), rtol=0, atol=1e-4)
    assert not torch.equal(got.membrane, rounded(net).run(x).membrane)  # 4 bits change something


def delays_over(net, limit: int) -> tuple[int, int]:
    count, largest = 0, 0
    for layer in net.layers:
        active = half_up(layer.delays())[layer.mask.numpy()]
        count += int((active > limit).sum())
        largest = max(largest, int(active.max()))
    return count, largest


def test_max_delay_is_refused_with_counts_or_clipped(tmp_path):
    net = make_net("free")
    count, largest = delays_over(net, 2)
    assert count > 0 and largest > 2
    with pytest.raises(ValueError, match=rf"{count} synapses .* max_delay=2 .*largest: {largest}"):
        to_nir(net, max_delay=2)
    to_nir(net, max_delay=largest)  # at the limit: fine
    graph = through_file(to_nir(net, max_delay=2, clip_delays=True), tmp_path)
    assert int(graph.metadata["clipped_synapses"]) == count
    assert int(graph.metadata["hardware_max_delay"]) == 2
    steps = [
        round(float(n.delay[0]) / 1e-3) for n in graph.nodes.values() if isinstance(n, nir.Delay)
    ]
    assert max(steps) == 2
    reference = rounded(net)
    with torch.no_grad():
        for layer in reference.layers:  # clamp the rounded delays independently
            layer.free_delays.copy_(torch.from_numpy(half_up(layer.delays())).clamp(max=2))
    x = spike_input()
    assert torch.equal(from_nir(graph).run(x).membrane, reference.run(x).membrane)


def test_recurrent_delays_count_their_step_of_latency():
    net = make_net("recurrent")
    largest = max(int(half_up(layer.delays()).max()) for layer in net.recurrent_layers) + 1
    with pytest.raises(ValueError, match="latency"):
        to_nir(net, max_delay=largest - 1)
    with pytest.raises(ValueError, match="at least 1 step"):
        to_nir(net, max_delay=0, clip_delays=True)
    graph = to_nir(net, max_delay=2, clip_delays=True)
    recurrent = [n for n in graph.nodes.values() if n.metadata.get("layer", "").startswith("rec")]
    assert all(1 <= n.metadata["delay_steps"] <= 2 for n in recurrent)


def test_write_nir_and_argument_checks(tmp_path):
    net = make_net("spatial")
    write_nir(net, tmp_path / "a.nir", dt=1e-4)
    assert float(nir.read(tmp_path / "a.nir").metadata["dt"]) == 1e-4
    for bad in ({"dt": 0.0}, {"dt": float("nan")}, {"max_delay": -1}, {"weight_bits": 1}):
        with pytest.raises(ValueError):
            to_nir(net, **bad)
    net = make_net("batch_norm").train()
    before = state_copy(net)
    to_nir(net, weight_bits=3)
    assert not differing_keys(net.state_dict(), before)
    assert net.training and all(layer.kernel_kind == "gauss" for layer in net.delay_layers())
