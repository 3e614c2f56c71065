"""Measures of a whole SpatialSNN: which graph, every measure present, free and no delays,
known answers through the network (tuning laid out by position, positions linear in input
weights, an ordered input), activity recording, and the library without networkx."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from spatial_layers import SpatialSNN, analysis

SECTIONS = {"format", "settings", "network", "wiring", "graph", "space", "function", "summary"}
SUMMARY_KEYS = {
    "wiring_cost", "mean_length", "weighted_mean_length", "wiring_efficiency",
    "delay_zero_fraction", "delay_max_fraction", "delay_clamped_high_fraction", "modularity",
    "communities", "clustering", "path_length", "global_efficiency", "small_world",
    "small_world_z", "moran_i", "distance_tuning_correlation", "distance_weight_correlation",
    "ridge_r2", "input_order_alignment",
}  # fmt: skip
POSITION_MEASURES = ("moran_i", "distance_tuning_correlation", "ridge_r2", "input_order_alignment")


def small_net(**kwargs) -> SpatialSNN:
    torch.manual_seed(0)
    options = {"max_delay": 6, "init_gain": 4.0} | kwargs
    hidden = options.pop("hidden_sizes", [24])
    return SpatialSNN(5, 3, hidden, **options)


def batches(count: int = 2, batch: int = 16, steps: int = 15, inputs: int = 5):
    generator = torch.Generator().manual_seed(1)
    return [
        (
            (torch.rand(batch, steps, inputs, generator=generator) < 0.3).float(),
            torch.randint(0, 3, (batch,), generator=generator),
        )
        for _ in range(count)
    ]


def positional_activity(net: SpatialSNN, samples: int = 60) -> analysis.Activity:
    """Rates whose preferred class is set by the hidden neuron's x coordinate (thirds)."""
    x = net.positions[1].coords.detach().numpy()[:, 0]
    preferred = np.digitize(x, np.quantile(x, [1 / 3, 2 / 3]))
    labels = np.arange(samples) % 3
    rates = 0.05 + 0.2 * (labels[:, None] == preferred[None, :])
    return analysis.Activity(rates, labels, 3)


def test_the_graph_of_all_populations_is_the_block_matrix_of_the_layers():
    net = small_net()
    with torch.no_grad():
        net.layers[0].mask[:, 0] = False  # input 0 feeds nothing
    g = analysis.network_graph(net)
    assert g.kind == "all" and g.adjacency.shape == (32, 32)
    np.testing.assert_array_equal(g.population, [0] * 5 + [1] * 24 + [2] * 3)
    first = net.layers[0].effective_weight().detach().double().abs().numpy()
    readout = net.readout.synapses.effective_weight().detach().double().abs().numpy()
    np.testing.assert_allclose(g.adjacency[:5, 5:29], first.T)
    np.testing.assert_allclose(g.adjacency[5:29, 29:], readout.T)
    assert g.adjacency[0].sum() == 0 and np.isnan(g.lengths[0, 5:29]).all()
    assert (g.adjacency[5:, :5] == 0).all() and (g.adjacency[5:29, 5:29] == 0).all()
    coords = [p.coords.detach().double().numpy() for p in net.positions]
    np.testing.assert_allclose(g.positions, np.concatenate(coords))
    distance = np.linalg.norm(coords[1][:, None] - coords[2][None], axis=-1)
    np.testing.assert_allclose(g.lengths[5:29, 29:], distance, rtol=1e-6)


def test_a_recurrent_network_is_analysed_on_its_hidden_graph():
    net = small_net(hidden_sizes=[12, 10], recurrent=True)
    g = analysis.network_graph(net, "auto")
    assert g.kind == "hidden" and g.adjacency.shape == (22, 22)
    recurrent = net.hidden[0].recurrent.effective_weight().detach().double().abs().numpy()
    np.testing.assert_allclose(g.adjacency[:12, :12], recurrent.T)  # self-loops: measures drop them
    forward = net.layers[1].effective_weight().detach().double().abs().numpy()
    np.testing.assert_allclose(g.adjacency[:12, 12:], forward.T)
    assert analysis.network_graph(net, "all").adjacency.shape == (30, 30)
    result = analysis.analyze(net, nulls=5)
    assert result["graph"]["clustering"]["value"] > 0
    assert result["graph"]["small_world"]["value"] is not None
    assert set(result["graph"]["small_world"]["nulls"]) == {"weight_shuffle", "strength"}


def test_every_measure_is_present_finite_or_none_and_json_ready():
    net = small_net(hidden_sizes=[16, 12])
    calls = []
    activity = analysis.record_activity(net, batches())
    result = analysis.analyze(net, activity, nulls=4, on_null=lambda: calls.append(1))
    assert len(calls) == 8  # 4 nulls x 2 null models
    assert set(result) >= SECTIONS
    assert set(result["summary"]) == SUMMARY_KEYS
    text = json.dumps(result, allow_nan=False)  # no NaN or inf anywhere
    assert json.loads(text)["settings"]["nulls"] == 4
    assert [layer["name"] for layer in result["wiring"]["layers"]] == [
        "input -> hidden 1", "hidden 1 -> hidden 2", "hidden 2 -> output",
    ]  # fmt: skip
    assert result["wiring"]["length_source"] == "positions"
    for measure in ("modularity", "clustering", "path_length", "global_efficiency"):
        stats = result["graph"][measure]["nulls"]["strength"]
        assert len(stats["values"]) == 4
    # A layered feed-forward graph has no triangles: clustering 0, small-world undefined.
    assert result["graph"]["clustering"]["value"] == 0.0
    assert result["graph"]["small_world"]["value"] is None
    assert "no triangles" in result["graph"]["small_world"]["unavailable"]
    assert result["function"]["samples"] == 32
    histogram = result["wiring"]["layers"][0]["delay_histogram"]
    assert sum(histogram["counts"]) == result["wiring"]["layers"][0]["synapses"] == 5 * 16


def test_wiring_totals_match_the_layers_and_the_training_term():
    from spatial_layers.sparsity import wiring_cost

    net = small_net()
    result = analysis.analyze(net, nulls=0)
    costs = [layer["wiring_cost"]["value"] for layer in result["wiring"]["layers"]]
    assert result["wiring"]["total"]["wiring_cost"]["value"] == pytest.approx(sum(costs))
    expected = sum(float(wiring_cost(layer).detach()) for layer in net.layers)
    assert sum(costs) == pytest.approx(expected, rel=1e-5)
    cheap = analysis.cheap_measures(net)
    for key, value in cheap.items():
        if key in result["summary"]:
            assert value == pytest.approx(result["summary"][key]), key


def test_free_delays_say_which_measures_need_positions():
    net = small_net(delays="free")
    result = analysis.analyze(net, analysis.record_activity(net, batches()), nulls=3)
    for key in POSITION_MEASURES:
        assert result["space"][key]["value"] is None
        assert result["space"][key]["unavailable"].startswith(analysis.NEEDS_POSITIONS)
        assert "delays='free'" in result["space"][key]["unavailable"]
    assert result["wiring"]["length_source"] == "delays"
    assert result["summary"]["wiring_cost"] > 0 and result["summary"]["modularity"] is not None
    assert analysis.network_graph(net).positions is None
    json.dumps(result, allow_nan=False)


def test_no_delays_have_no_lengths():
    net = small_net(delays="none", max_delay=0)
    result = analysis.analyze(net, nulls=2)
    assert result["wiring"]["length_source"] is None
    assert result["summary"]["wiring_cost"] is None
    assert "needs delays" in result["wiring"]["total"]["wiring_cost"]["unavailable"]
    assert result["wiring"]["total"]["delays"]["zero"] == 1.0
    # every delay is 0 = max_delay: that is no delay at all, not a saturated range
    assert result["summary"]["delay_max_fraction"] is None
    assert "max_delay is 0" in result["wiring"]["total"]["delays"]["unavailable"]["max"]
    assert result["wiring"]["layers"][0]["delays"]["max"] is None
    assert analysis.cheap_measures(net, communities=False)["delay_max_fraction"] is None
    assert "needs delays" in result["graph"]["communicability_wiring_cost"]["unavailable"]


def test_tuning_laid_out_by_position_gives_moran_i_near_one_and_shuffled_near_zero():
    net = small_net(hidden_sizes=[90])
    activity = positional_activity(net)
    result = analysis.analyze(net, activity, nulls=30)
    moran = result["space"]["moran_i"]
    # Random 2-D positions: a few neighbours across the class borders keep it below 1.
    assert moran["value"] > 0.65 and moran["neurons"] == 90
    assert moran["nulls"]["permutation"]["z"] > 5
    assert moran["nulls"]["permutation"]["mean"] == pytest.approx(moran["expected"], abs=0.03)
    correlation = result["space"]["distance_tuning_correlation"]
    assert correlation["value"] < -0.3  # near neurons share their preferences
    shuffled = activity._replace(rates=activity.rates[:, np.random.default_rng(0).permutation(90)])
    value = analysis.analyze(net, shuffled, nulls=0)["space"]["moran_i"]["value"]
    assert abs(value) < 0.15


def test_positions_linear_in_the_input_weights_give_ridge_r2_near_one():
    net = small_net(hidden_sizes=[80])
    weights = net.layers[0].effective_weight().detach()  # (80, 5)
    with torch.no_grad():
        net.positions[1].coords.copy_(
            weights @ torch.randn(5, 2, generator=torch.Generator().manual_seed(2))
        )
    ridge = analysis.analyze(net, nulls=20)["space"]["ridge_r2"]
    assert ridge["value"] > 0.99 and ridge["features"] == 5
    assert ridge["nulls"]["permutation"]["mean"] < 0.1
    with torch.no_grad():
        net.positions[1].coords.copy_(torch.rand(80, 2, generator=torch.Generator().manual_seed(3)))
    assert analysis.analyze(net, nulls=0)["space"]["ridge_r2"]["value"] < 0.1


def test_an_ordered_input_laid_out_along_space():
    torch.manual_seed(0)
    net = SpatialSNN(40, 3, [30], dim=1, max_delay=6)
    targets = torch.linspace(0.0, 6.0, 30)
    with torch.no_grad():
        net.positions[1].coords.copy_(targets[:, None])
        # Input c sends its weight to the targets near position 6 c / 39.
        centres = torch.linspace(0.0, 6.0, 40)
        net.layers[0].weight.copy_(torch.exp(-((targets[:, None] - centres[None]) ** 2)))
    result = analysis.analyze(net, nulls=30, ordered_inputs=True)
    order = result["space"]["input_order_alignment"]
    assert order["value"] > 0.95 and order["nulls"]["permutation"]["z"] > 5
    unordered = analysis.analyze(net, nulls=0)["space"]["input_order_alignment"]
    assert unordered["value"] is None and "not ordered" in unordered["unavailable"]


def test_record_activity_keeps_rates_per_sample_in_either_layout():
    net = small_net(hidden_sizes=[10, 6])
    seen = []
    activity = analysis.record_activity(
        net, batches(), on_batch=lambda output, labels: seen.append(output.membrane.shape)
    )
    assert activity.rates.shape == (32, 16) and activity.labels.shape == (32,)
    assert seen == [(15, 16, 3), (15, 16, 3)]  # time-major, whatever the network's layout
    first, _ = batches()[0]
    with torch.no_grad():
        spikes = net.run(first.transpose(0, 1)).hidden_spikes
    expected = torch.cat([s.mean(0) for s in spikes], 1)
    np.testing.assert_allclose(activity.rates[:16], expected.numpy(), atol=1e-7)
    net.batch_first = True
    again = analysis.record_activity(net, batches())
    np.testing.assert_allclose(again.rates, activity.rates, atol=1e-7)
    assert net.training  # left in the mode it had
    with pytest.raises(ValueError, match="no batches"):
        analysis.record_activity(net, [])


def test_bad_arguments_are_refused():
    net = small_net()
    with pytest.raises(ValueError, match="null models"):
        analysis.analyze(net, nulls=1, null_models=("erdos",))
    with pytest.raises(ValueError, match="nulls must be"):
        analysis.analyze(net, nulls=-1)
    with pytest.raises(ValueError, match="graph must be"):
        analysis.network_graph(net, "readout")
    with pytest.raises(TypeError, match="SpatialSNN"):
        analysis.analyze(torch.nn.Linear(2, 2))


def test_the_analysis_runs_without_networkx():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["networkx"] = None  # as if it were not installed
        import torch
        from spatial_layers import SpatialSNN, analysis
        net = SpatialSNN(5, 3, [12], max_delay=4)
        result = analysis.analyze(net, nulls=2)
        assert result["summary"]["modularity"] is not None
        try:
            analysis.graph.louvain_communities(result and [[0.0]], seed=0, method="networkx")
        except ModuleNotFoundError as error:
            assert 'pip install "spsnn[analysis]"' in str(error) and error.name == "networkx"
            print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_a_measure_does_not_depend_on_how_many_nulls_the_others_drew():
    """Each measure draws from its own random stream: the ridge R^2's folds, and one null
    model's networks, are the same whatever the null count or the other null models."""
    net = small_net()
    activity = positional_activity(net)
    few = analysis.analyze(net, activity, nulls=0)
    many = analysis.analyze(net, activity, nulls=4)
    assert many["space"]["moran_i"]["nulls"]["permutation"]["values"]  # drawn before the ridge
    assert few["space"]["ridge_r2"]["value"] == many["space"]["ridge_r2"]["value"]
    alone = analysis.analyze(net, activity, nulls=2, null_models=["strength"])
    both = analysis.analyze(net, activity, nulls=2, null_models=["weight_shuffle", "strength"])
    draws = [r["graph"]["path_length"]["nulls"]["strength"]["values"] for r in (alone, both)]
    assert draws[0] == draws[1]


def test_a_diverged_network_is_refused_naming_its_layer():
    net = small_net()
    with torch.no_grad():
        net.layers[1].weight[0, 2] = float("nan")
    for measure in (lambda: analysis.analyze(net, nulls=0), lambda: analysis.cheap_measures(net)):
        with pytest.raises(ValueError, match=r"\(hidden 1 -> output\) has 1 non-finite weights"):
            measure()
