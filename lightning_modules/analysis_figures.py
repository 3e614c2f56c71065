"""Figures of a network's analysis (``spsnn analyze``): layouts, weights, delays, nulls.

Pure functions of a :class:`~spatial_layers.SpatialSNN`, its
:func:`spatial_layers.analysis.analyze` result and (optionally) its recorded
activity; each writes one PNG with matplotlib's Agg backend and returns its path, or
None when the network lacks what the figure shows (coordinates, activity). Nothing
here imports Lightning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lightning_modules.summary import _pyplot, _save, panel_grid, plot_delay_histogram
from spatial_layers import SpatialSNN, analysis

#: Prefix of every figure's file name in the run folder.
PREFIX = "analysis_"


def _layout_axes(fig, dim: int):
    return fig.add_subplot(projection="3d" if dim >= 3 else None)


def _layout_points(positions: np.ndarray, population: np.ndarray) -> list[np.ndarray]:
    """Coordinates to draw: 1-D against the population index, else the first three."""
    if positions.shape[1] == 1:
        return [positions[:, 0], population.astype(float)]
    return [positions[:, i] for i in range(min(positions.shape[1], 3))]


def _label_axes(ax, dim: int) -> None:
    ax.set_xlabel("x (space units)")
    ax.set_ylabel("population" if dim == 1 else "y (space units)")
    if dim >= 3:
        ax.set_zlabel("z (space units)")
    elif dim == 2:
        ax.set_aspect("equal", adjustable="datalim")


def plot_communities(net: SpatialSNN, result: dict[str, Any], path: Path) -> Path | None:
    """Neuron positions of the analysed graph coloured by Louvain community (None
    without coordinates)."""
    g = analysis.network_graph(net, result["settings"]["graph"])
    if g.positions is None:
        return None
    plt = _pyplot()
    communities = np.asarray(result["graph"]["node_community"])
    dim = g.positions.shape[1]
    fig = plt.figure(figsize=(6.5, 6))
    ax = _layout_axes(fig, dim)
    cmap = plt.get_cmap("tab20")
    colours = [cmap(c % 20) for c in communities]
    markers = {0: "D", len(g.names) - 1: "*"} if g.kind == "all" else {}
    points = _layout_points(g.positions, g.population)
    for index in np.unique(g.population):
        chosen = g.population == index
        style = {
            "marker": markers.get(int(index), "o"),
            "s": 60 if int(index) in markers else 18,
            "edgecolors": "black" if int(index) in markers else "none",
            "linewidths": 0.5,
        }
        ax.scatter(
            *[axis[chosen] for axis in points],
            c=[colours[i] for i in np.flatnonzero(chosen)],
            **style,
        )
        # The legend names the populations by marker; colours are communities.
        ax.scatter(*[[] for _ in points], color="grey", label=g.names[int(index)], **style)
    _label_axes(ax, dim)
    q = result["graph"]["modularity"]
    ax.set_title(
        f"Louvain communities of the {g.kind} graph: {q['communities']}, Q = {q['value']:.3f}"
    )
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def plot_preferred_class(
    net: SpatialSNN, tuning: np.ndarray | None, result: dict[str, Any], path: Path
) -> Path | None:
    """Hidden neurons at their positions coloured by preferred class (grey: untuned);
    None without coordinates or activity."""
    if tuning is None or net.delay_mode != "spatial":
        return None
    plt = _pyplot()
    hidden = list(range(1, len(net.hidden_sizes) + 1))
    g = analysis.network_graph(net, "all")
    chosen = np.isin(g.population, hidden)
    positions, population = g.positions[chosen], g.population[chosen]
    preferred = analysis.function.preferred_class(tuning)
    dim = positions.shape[1]
    fig = plt.figure(figsize=(6.5, 6))
    ax = _layout_axes(fig, dim)
    points = _layout_points(positions, population)
    untuned = preferred < 0
    if untuned.any():
        ax.scatter(*[p[untuned] for p in points], c="lightgrey", s=14, label="untuned")
    cmap = plt.get_cmap("tab10")
    for c in range(tuning.shape[0]):
        mask = preferred == c
        if mask.any():
            ax.scatter(*[p[mask] for p in points], color=cmap(c % 10), s=18, label=f"class {c}")
    _label_axes(ax, dim)
    moran = result["space"]["moran_i"]
    value = moran["value"]
    ax.set_title(
        "preferred class of hidden neurons"
        + (f"; Moran's I = {value:.3f}" if value is not None else "")
    )
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def plot_weight_distance(net: SpatialSNN, result: dict[str, Any], path: Path) -> Path | None:
    """|w| against synapse length, one panel per layer (None without delays)."""
    if net.delay_mode == "none":
        return None
    found = analysis.connections(net)
    fig, axes = panel_grid(len(found), max_cols=3, panel=(4, 3.2))
    source = result["wiring"]["length_source"]
    by_name = {entry["name"]: entry for entry in result["wiring"]["layers"]}
    for ax, connection in zip(axes, found, strict=True):
        layer = connection.layer
        mask = layer.mask.cpu().numpy()
        weights = np.abs(layer.effective_weight().detach().double().cpu().numpy()[mask])
        lengths = analysis.synapse_lengths(layer)[mask]
        ax.scatter(lengths, weights, s=4, alpha=0.4, color="tab:purple", edgecolors="none")
        r = by_name[connection.name]["distance_weight_correlation"]["value"]
        ax.set_title(f"{connection.name}" + (f", r = {r:.2f}" if r is not None else ""), fontsize=9)
        ax.set_xlabel(
            "distance (space units)" if source == "positions" else "delay x velocity (space units)"
        )
        ax.set_ylabel("|w|")
    return _save(fig, path)


def plot_adjacency(net: SpatialSNN, result: dict[str, Any], path: Path) -> Path:
    """The analysed graph's |w| matrix with nodes sorted by community (rows: sources)."""
    plt = _pyplot()
    g = analysis.network_graph(net, result["settings"]["graph"])
    communities = np.asarray(result["graph"]["node_community"])
    order = np.lexsort((g.population, communities))
    matrix = g.adjacency[np.ix_(order, order)]
    fig, ax = plt.subplots(figsize=(6, 5.5))
    shown = ax.imshow(matrix, cmap="viridis", interpolation="nearest", aspect="auto")
    boundaries = np.flatnonzero(np.diff(communities[order])) + 0.5
    for b in boundaries:
        ax.axhline(b, color="white", linewidth=0.5)
        ax.axvline(b, color="white", linewidth=0.5)
    fig.colorbar(shown, ax=ax, label="|w|")
    ax.set_xlabel("target neuron (sorted by community)")
    ax.set_ylabel("source neuron (sorted by community)")
    ax.set_title(f"{g.kind} graph, {result['graph']['modularity']['communities']} communities")
    return _save(fig, path)


def _null_panels(result: dict[str, Any]) -> list[tuple[str, float | None, str, list]]:
    """(title, observed, null model, values) of every measure that has null values."""
    panels = []
    measures = [
        ("modularity", result["graph"]["modularity"]),
        ("clustering", result["graph"]["clustering"]),
        ("path length", result["graph"]["path_length"]),
        ("global efficiency", result["graph"]["global_efficiency"]),
        ("Moran's I", result["space"]["moran_i"]),
        ("distance-tuning r", result["space"]["distance_tuning_correlation"]),
        ("ridge R^2", result["space"]["ridge_r2"]),
        ("input order R", result["space"]["input_order_alignment"]),
    ]
    for title, measure in measures:
        for model, stats in (measure.get("nulls") or {}).items():
            panels.append((title, measure["value"], model, stats["values"]))
    small = result["graph"]["small_world"]
    for model, stats in (small.get("nulls") or {}).items():
        panels.append(("small-world index", stats["index"], model, stats["values"]))
    return [p for p in panels if _informative(p[1], p[3])]


def _informative(observed: float | None, values: list) -> bool:
    """Null values that say something: some finite, and not all equal to the observed
    value (a feed-forward graph's clustering is 0 in it and in every null)."""
    finite = [v for v in values if v is not None]
    return bool(finite) and not (min(finite) == max(finite) == observed)


def plot_nulls(result: dict[str, Any], path: Path) -> Path | None:
    """Histogram of every measure's null values with the observed value (red line)."""
    panels = _null_panels(result)
    if not panels:
        return None
    fig, axes = panel_grid(len(panels), max_cols=4, panel=(3.4, 2.6))
    from matplotlib.ticker import MaxNLocator

    for ax, (title, observed, model, values) in zip(axes, panels, strict=True):
        finite = np.array([v for v in values if v is not None])
        spread = np.ptp(finite) > 1e-9 * max(1.0, float(np.abs(finite).max()))
        ax.hist(finite, bins=20 if spread else 1, color="tab:grey")
        if observed is not None:
            ax.axvline(observed, color="tab:red", linewidth=1.5)
        ax.set_title(f"{title}\n({model}, n = {len(finite)})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(4))
    return _save(fig, path)


def save_analysis_figures(
    net: SpatialSNN,
    result: dict[str, Any],
    tuning: np.ndarray | None,
    directory: str | Path,
) -> list[Path]:
    """Writes every figure that applies into ``directory`` (``analysis_*.png``).

    Args:
        net: the analysed network.
        result: its :func:`spatial_layers.analysis.analyze` result.
        tuning: (K, H) class-conditional rates of the hidden neurons, or None.
        directory: where to write.

    Returns:
        The paths written.
    """
    directory = Path(directory)
    written = [
        plot_communities(net, result, directory / f"{PREFIX}communities.png"),
        plot_preferred_class(net, tuning, result, directory / f"{PREFIX}preferred_class.png"),
        plot_adjacency(net, result, directory / f"{PREFIX}adjacency.png"),
        plot_weight_distance(net, result, directory / f"{PREFIX}weight_distance.png"),
        plot_delay_histogram(net, directory / f"{PREFIX}delays.png"),
        plot_nulls(result, directory / f"{PREFIX}nulls.png"),
    ]
    return [path for path in written if path is not None]
