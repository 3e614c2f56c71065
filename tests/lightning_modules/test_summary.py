"""Model summaries, summary.json and the layout and delay plots of a network."""

from __future__ import annotations

import json

import pytest
import torch

from lightning_modules.summary import (
    SUMMARY_KEYS,
    model_summary,
    plot_delay_histogram,
    plot_layout,
    populations,
    save_plots,
    write_summary,
)
from spatial_layers.networks import SpatialSNN


@pytest.mark.parametrize("dim", [1, 2, 3, 4])
def test_layout_plot_every_dimension(tmp_path, dim):
    net = SpatialSNN(5, 3, [12, 6], dim=dim, max_delay=5, recurrent=dim == 2)
    assert [name for name, _ in populations(net)] == ["input", "hidden 1", "hidden 2", "output"]
    path = plot_layout(net, tmp_path / "layout.png", top_k=10)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_delay_histogram(net, tmp_path / "delays.png").stat().st_size > 1000


@pytest.mark.parametrize("delays", ["free", "none"])
def test_plots_without_coordinates(tmp_path, delays):
    net = SpatialSNN(5, 3, [12], delays=delays, max_delay=5)
    assert plot_layout(net, tmp_path / "layout.png") is None
    assert [p.name for p in save_plots(net, tmp_path)] == ["delays.png"]


def test_summary_keys_and_counts(tmp_path):
    net = SpatialSNN(5, 3, [60], dim=2)
    summary = model_summary(net)
    assert (summary["n_params"], summary["n_weights"], summary["n_coordinates"]) == (616, 480, 136)
    assert summary["sparsity"] == 0.0 and summary["delays"] == "spatial" and summary["dim"] == 2
    with torch.no_grad():
        net.layers[0].mask[:, :2] = False  # 120 of 480 synapses gone
    assert model_summary(net)["sparsity"] == pytest.approx(120 / 480)
    assert model_summary(net)["n_weights"] == 360
    full = {key: 0 for key in SUMMARY_KEYS} | {"test_acc": torch.tensor(0.5)}
    path = write_summary(tmp_path / "summary.json", full)
    assert json.loads(path.read_text())["test_acc"] == 0.5
    with pytest.raises(ValueError, match="wall_time_s"):
        write_summary(tmp_path / "bad.json", {k: 0 for k in SUMMARY_KEYS if k != "wall_time_s"})
