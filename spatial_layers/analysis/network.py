r"""Every measure of a :class:`~spatial_layers.SpatialSNN`: its layers, its graph, its layout
and, with recorded activity, its function.

:func:`analyze` returns one JSON-ready dict (what ``spsnn analyze`` writes as
``analysis.json``); :func:`cheap_measures` the few scalars that cost well under a
second (what the ``LayoutAnalysis`` callback logs during training); :func:`record_activity`
runs batches through the network and keeps every hidden neuron's rate per sample.

**Which graph.** The graph measures need one directed weighted graph, with
:math:`|w^{\mathrm{eff}}|` of every active synapse as its edges (``[i, j]``: i -> j;
see :mod:`~spatial_layers.analysis.graph`):

* ``"hidden"``: the hidden neurons with the synapses among them (recurrent layers,
  and hidden -> hidden feed-forward layers): the recurrent weight matrix that the
  neuron-position paper and seRNN analyse. ``"auto"`` picks it when the network has
  recurrent layers.
* ``"all"``: every population (inputs, hidden layers, readout) as one block matrix of
  all layers. ``"auto"`` picks it for a feed-forward network, whose hidden neurons
  are not connected among themselves. A layered feed-forward graph has no triangles,
  so its clustering is 0 and its small-world index undefined (reported as such); its
  modularity, path length and efficiency are defined.

Null networks keep the populations (``blocks``): a null edge joins the same two
populations as the edge it replaces (:mod:`~spatial_layers.analysis.nulls`).

**Measures that need positions.** A network with ``delays="free"`` or ``"none"`` has
no coordinates: every measure that needs them (Moran's I, distance against tuning,
the ridge regression of positions, preferred target positions, the layout figures)
is reported as ``{"value": None, "unavailable": "needs positions (delays='spatial');
..."}`` rather than raising, so that one analysis covers every kind of network.
Wiring measures use each synapse's length, which free delays also give
(``delay * velocity``, as :func:`spatial_layers.sparsity.wiring_distance`);
``wiring.length_source`` says which. Without delays there are no lengths.

Every measure is a dict with ``value`` (a float, or None where undefined), ``unit``
(None: dimensionless) and, where computed, ``nulls``: by null model, the
:class:`~spatial_layers.analysis.nulls.NullStatistics` of the measure on that many null
networks (or permutations). Non-finite numbers are written as None.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from spatial_layers.analysis import function, graph, space, wiring
from spatial_layers.analysis.nulls import NULL_MODELS, null_statistics
from spatial_layers.delay import SpatialDelay
from spatial_layers.networks.snn import SNNOutput, SpatialSNN, swap_time_and_batch
from spatial_layers.sparsity import wiring_distance

__all__ = [
    "GRAPH_CHOICES",
    "NEEDS_POSITIONS",
    "Activity",
    "Connection",
    "NetworkGraph",
    "analyze",
    "cheap_measures",
    "connections",
    "headline",
    "layer_wiring",
    "network_graph",
    "population_names",
    "record_activity",
    "synapse_lengths",
]

GraphChoice = Literal["auto", "all", "hidden"]
GRAPH_CHOICES: tuple[str, ...] = ("auto", "all", "hidden")
#: The marker of a measure that needs neuron coordinates.
NEEDS_POSITIONS = "needs positions (delays='spatial')"
#: The null model behind the headline small-world index.
SMALL_WORLD_NULL = "strength"
#: The layout of analysis.json (raised when a key changes meaning).
FORMAT_VERSION = 1


class Connection(NamedTuple):
    """One delayed layer of a network, between two populations.

    Attributes:
        name: ``"input -> hidden 1"``, ``"hidden 1 -> hidden 1 (recurrent)"``, ...
        module: the layer's qualified name in the network (``"hidden.0.synapses"``).
        pre, post: indices of the populations (0: inputs, 1..L: hidden, L + 1: readout).
        layer: the :class:`~spatial_layers.SpatialDelay`.
    """

    name: str
    module: str
    pre: int
    post: int
    layer: SpatialDelay


class NetworkGraph(NamedTuple):
    """A network as one weighted directed graph (see the module doc).

    Attributes:
        kind: ``"all"`` or ``"hidden"``.
        adjacency: (N, N) :math:`|w^{eff}|`, ``[i, j]`` the synapse i -> j (a recurrent
            layer's self-synapses on the diagonal; the graph measures ignore them).
        lengths: (N, N) length of every synapse (space units; NaN where none), or None
            without delays.
        positions: (N, D) coordinates (space units), or None without them.
        population: (N,) index of every node's population (as :class:`Connection`).
        names: name of every population, by index.
    """

    kind: str
    adjacency: np.ndarray
    lengths: np.ndarray | None
    positions: np.ndarray | None
    population: np.ndarray
    names: tuple[str, ...]


class Activity(NamedTuple):
    """Recorded hidden activity: rates per sample and the samples' classes.

    Attributes:
        rates: (S, H) mean spikes per step of every hidden neuron (all hidden
            populations, in order) in every sample.
        labels: (S,) class of every sample.
        num_classes: K.
    """

    rates: np.ndarray
    labels: np.ndarray
    num_classes: int


# --------------------------------------------------------------------------- structure


def _check_network(net: object) -> SpatialSNN:
    if not isinstance(net, SpatialSNN):
        raise TypeError(f"the analysis needs a SpatialSNN, got {type(net).__name__}")
    return net


def _check_finite(net: SpatialSNN) -> None:
    """Raises ValueError naming the first layer with a NaN or infinite weight or delay (a
    diverged training), rather than measuring the graph without it."""
    for connection in connections(net):
        for what, values in (
            ("weights", _weights(connection.layer)),
            ("delays", _raw_delays(connection.layer)),
        ):
            bad = int((~np.isfinite(values)).sum())
            if bad:
                raise ValueError(
                    f"layer {connection.module} ({connection.name}) has {bad} non-finite "
                    f"{what} of {values.size}: the training diverged; analyze an earlier "
                    "checkpoint"
                )


def population_names(net: SpatialSNN) -> list[str]:
    """``["input", "hidden 1", ..., "output"]``: the populations by index."""
    hidden = [f"hidden {i}" for i in range(1, len(net.hidden_sizes) + 1)]
    return ["input", *hidden, "output"]


def connections(net: SpatialSNN) -> list[Connection]:
    """Every delayed layer of ``net``: the feed-forward ones in order, then the recurrent ones."""
    _check_network(net)
    names = population_names(net)
    modules = {id(m): name for name, m in net.named_modules()}
    found = [
        Connection(f"{names[i]} -> {names[i + 1]}", modules[id(layer)], i, i + 1, layer)
        for i, layer in enumerate(net.layers)
    ]
    for h, block in enumerate(net.hidden, start=1):
        if block.recurrent is not None:
            name = f"{names[h]} -> {names[h]} (recurrent)"
            found.append(Connection(name, modules[id(block.recurrent)], h, h, block.recurrent))
    return found


def synapse_lengths(layer: SpatialDelay) -> np.ndarray | None:
    """(C_out, C_in) length of every possible synapse of ``layer`` (space units): the distance
    with spatial delays, ``delay * velocity`` with free ones; None without delays."""
    if layer.delay_mode == "none":
        return None
    with torch.no_grad():
        return wiring_distance(layer).double().cpu().numpy()


def _raw_delays(layer: SpatialDelay) -> np.ndarray:
    """(C_out, C_in) delays before the clamp to [0, max_delay], in steps."""
    with torch.no_grad():
        if layer.delay_mode == "spatial":
            return (wiring_distance(layer) / layer.velocity).double().cpu().numpy()
        if layer.delay_mode == "free":
            return layer.free_delays.double().cpu().numpy()
        return np.zeros((layer.out_features, layer.in_features))


def _weights(layer: SpatialDelay) -> np.ndarray:
    with torch.no_grad():
        return layer.effective_weight().double().cpu().numpy()


def _mask(layer: SpatialDelay) -> np.ndarray:
    return layer.mask.cpu().numpy()


def _positions(net: SpatialSNN, populations: Sequence[int]) -> np.ndarray | None:
    if net.delay_mode != "spatial":
        return None
    with torch.no_grad():
        return np.concatenate([net.positions[i].coords.double().cpu().numpy() for i in populations])


def network_graph(net: SpatialSNN, which: GraphChoice = "auto") -> NetworkGraph:
    """``net`` as one weighted directed graph (see the module doc for ``which``).

    Example:
        >>> net = SpatialSNN(5, 3, [16], max_delay=4)
        >>> g = network_graph(net)
        >>> g.kind, g.adjacency.shape, int((g.adjacency > 0).sum())
        ('all', (24, 24), 128)
    """
    _check_network(net)
    if which not in GRAPH_CHOICES:
        raise ValueError(f"graph must be one of {GRAPH_CHOICES}, got {which!r}")
    if which == "auto":
        which = "hidden" if net.recurrent_layers else "all"
    sizes = [net.num_inputs, *net.hidden_sizes, net.num_classes]
    chosen = list(range(len(sizes))) if which == "all" else list(range(1, len(sizes) - 1))
    offsets = dict(zip(chosen, np.cumsum([0] + [sizes[i] for i in chosen[:-1]]), strict=True))
    n = sum(sizes[i] for i in chosen)
    adjacency = np.zeros((n, n))
    lengths = None if net.delay_mode == "none" else np.full((n, n), np.nan)
    for connection in connections(net):
        if connection.pre not in offsets or connection.post not in offsets:
            continue
        layer = connection.layer
        pre = slice(offsets[connection.pre], offsets[connection.pre] + layer.in_features)
        post = slice(offsets[connection.post], offsets[connection.post] + layer.out_features)
        mask = _mask(layer)
        adjacency[pre, post] = np.abs(_weights(layer) * mask).T
        if lengths is not None:
            lengths[pre, post] = np.where(mask, synapse_lengths(layer), np.nan).T
    population = np.concatenate([np.full(sizes[i], i) for i in chosen])
    names = population_names(net)
    return NetworkGraph(
        which,
        adjacency,
        lengths,
        _positions(net, chosen),
        population,
        tuple(names),
    )


# --------------------------------------------------------------------------- activity


@torch.no_grad()
def record_activity(
    net: SpatialSNN,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    on_batch: Callable[[SNNOutput, Tensor], None] | None = None,
) -> Activity:
    """Runs ``batches`` through ``net`` (in eval mode) and keeps every hidden neuron's rate.

    Args:
        net: the network (its kernel as set: wrap the call in
            :func:`spatial_layers.use_kernel` to evaluate with another one).
        batches: ``(spikes (B, T, C), labels (B,))``, batch-first as the DataModules
            and ``SpikingClassifier`` give them, whatever ``net.batch_first`` is.
        on_batch: called with every batch's time-major :class:`SNNOutput` and labels
            (to count correct predictions alongside).

    Returns:
        :class:`Activity`; rates in spikes per step.
    """
    _check_network(net)
    was_training = net.training
    net.eval()
    rates, labels = [], []
    try:
        for spikes, batch_labels in batches:
            x = spikes if net.batch_first else spikes.transpose(0, 1)
            output = net.run(x)
            if net.batch_first:
                output = swap_time_and_batch(output)
            hidden = torch.cat([s.float().mean(0) for s in output.hidden_spikes], dim=1)
            rates.append(hidden.double().cpu().numpy())
            labels.append(batch_labels.cpu().numpy())
            if on_batch is not None:
                on_batch(output, batch_labels)
    finally:
        net.train(was_training)
    if not rates:
        raise ValueError("no batches to record activity from (an empty split?)")
    return Activity(np.concatenate(rates), np.concatenate(labels), net.num_classes)


# --------------------------------------------------------------------------- helpers


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float (and numpy scalar) as JSON-ready data."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.integer | bool | np.bool_):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def _measure(value: float | None, unit: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"value": value, "unit": unit, **extra}


def _unavailable(reason: str, unit: str | None = None) -> dict[str, Any]:
    return {"value": None, "unit": unit, "unavailable": reason}


def _positions_reason(net: SpatialSNN) -> str:
    return f"{NEEDS_POSITIONS}; this network has delays={net.delay_mode!r}"


def _stream(seed: int, name: str) -> np.random.Generator:
    """The random stream of one measure (or null model) ``name``: seeded by ``seed`` and the
    name alone, so that what one measure draws (how many nulls, which other null models)
    changes no other measure's numbers."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _permutation_nulls(
    statistic: Callable[[np.ndarray], float], count: int, size: int, rng: np.random.Generator
) -> list[float]:
    """``statistic(permutation)`` for ``count`` random permutations of ``range(size)``."""
    return [statistic(rng.permutation(size)) for _ in range(count)]


def _with_nulls(
    value: float, values: list[float], unit: str | None = None, **extra: Any
) -> dict[str, Any]:
    stats = null_statistics(value, values).as_dict()
    return _measure(value, unit, **extra, nulls={"permutation": stats})


# --------------------------------------------------------------------------- wiring


def layer_wiring(layer: SpatialDelay) -> dict[str, Any]:
    """Wiring measures of one layer's active synapses (see :mod:`~spatial_layers.analysis.wiring`).

    Returns:
        ``synapses``; ``wiring_cost``, ``mean_length``, ``weighted_mean_length``,
        ``wiring_efficiency`` and ``distance_weight_correlation`` (Pearson r of length
        and :math:`|w|`) as measures (unavailable without delays); ``delays``:
        :func:`~spatial_layers.analysis.wiring.delay_fractions`; ``delay_histogram``.
    """
    mask = _mask(layer)
    weights = np.abs(_weights(layer)[mask])
    raw = _raw_delays(layer)[mask]
    out: dict[str, Any] = {"synapses": int(mask.sum())}
    lengths = synapse_lengths(layer)
    unit = "space units"
    if lengths is None:
        reason = "needs delays (delays='spatial' or 'free'); this layer has delays='none'"
        for key, key_unit in (
            ("wiring_cost", "weight x space units"),
            ("mean_length", unit),
            ("weighted_mean_length", unit),
            ("wiring_efficiency", None),
            ("distance_weight_correlation", None),
        ):
            out[key] = _unavailable(reason, key_unit)
    else:
        ell = lengths[mask]
        plain, weighted = wiring.mean_length(weights, ell)
        out |= {
            "wiring_cost": _measure(wiring.wiring_cost(weights, ell), "weight x space units"),
            "mean_length": _measure(plain, unit),
            "weighted_mean_length": _measure(weighted, unit),
            "wiring_efficiency": _measure(wiring.wiring_efficiency(weights, ell)),
            "distance_weight_correlation": _measure(space.pearson(ell, weights)),
        }
    out["delays"] = wiring.delay_fractions(raw, layer.max_delay)
    out["delay_histogram"] = wiring.delay_histogram(
        np.clip(raw, 0, layer.max_delay), layer.max_delay
    )
    return out


def _wiring_section(net: SpatialSNN) -> dict[str, Any]:
    layers = []
    costs, lows, highs, all_lengths, all_weights, all_raw = [], [], [], [], [], []
    correlations = []
    for connection in connections(net):
        layer = connection.layer
        entry = {"name": connection.name, "module": connection.module} | layer_wiring(layer)
        layers.append(entry)
        mask = _mask(layer)
        all_raw.append(_raw_delays(layer)[mask])
        lengths = synapse_lengths(layer)
        if lengths is not None:
            w, ell = np.abs(_weights(layer)[mask]), lengths[mask]
            low, high = wiring.wiring_bounds(w, ell)
            costs.append(wiring.wiring_cost(w, ell))
            lows.append(low)
            highs.append(high)
            all_lengths.append(ell)
            all_weights.append(w)
            r = entry["distance_weight_correlation"]["value"]
            if r is not None and math.isfinite(r):
                correlations.append((r, entry["synapses"]))
    source = {"spatial": "positions", "free": "delays"}.get(net.delay_mode)
    raw = np.concatenate(all_raw) if all_raw else np.zeros(0)
    fractions = wiring.delay_fractions(raw, net.max_delay)  # one max_delay for every layer
    total: dict[str, Any] = {
        "synapses": sum(entry["synapses"] for entry in layers),
        "delays": fractions,
    }
    if source is None:
        reason = "needs delays (delays='spatial' or 'free'); this network has delays='none'"
        total |= {
            key: _unavailable(reason)
            for key in (
                "wiring_cost",
                "mean_length",
                "weighted_mean_length",
                "wiring_efficiency",
                "distance_weight_correlation",
            )
        }
    else:
        w, ell = np.concatenate(all_weights), np.concatenate(all_lengths)
        plain, weighted = wiring.mean_length(w, ell)
        low, high, cost = sum(lows), sum(highs), sum(costs)
        efficiency = (high - cost) / (high - low) if high - low > 1e-12 * max(high, 1) else None
        mean_r = (
            sum(r * s for r, s in correlations) / sum(s for _, s in correlations)
            if correlations
            else None
        )
        total |= {
            "wiring_cost": _measure(cost, "weight x space units"),
            "mean_length": _measure(plain, "space units"),
            "weighted_mean_length": _measure(weighted, "space units"),
            "wiring_efficiency": _measure(
                efficiency, bounds="each layer's weights re-paired with its own lengths"
            ),
            "distance_weight_correlation": _measure(
                mean_r, definition="the layers' Pearson r, weighted by their synapse counts"
            ),
        }
    return {"length_source": source, "layers": layers, "total": total}


# --------------------------------------------------------------------------- graph


def _graph_values(
    adjacency: np.ndarray,
    *,
    seed: int,
    resolution: float,
    communities: bool,
    louvain: graph.LouvainMethod = "numpy",
) -> dict[str, Any]:
    """The graph measures of one adjacency (the observed graph or a null)."""
    lengths = graph.path_lengths(adjacency)
    path_length, reachable = graph.characteristic_path_length(adjacency, lengths=lengths)
    values: dict[str, Any] = {
        "clustering": graph.average_clustering(adjacency),
        "path_length": path_length,
        "reachable": reachable,
        "global_efficiency": graph.global_efficiency(adjacency, lengths=lengths),
    }
    if communities:
        labels = graph.louvain_communities(
            adjacency, seed=seed, resolution=resolution, method=louvain
        )
        values["labels"] = labels
        values["modularity"] = graph.modularity(adjacency, labels, resolution=resolution)
    return values


def _graph_section(
    g: NetworkGraph,
    *,
    null_count: int,
    null_models: Sequence[str],
    seed: int,
    resolution: float,
    modularity_nulls: bool,
    louvain: graph.LouvainMethod,
    on_null: Callable[[], None] | None,
) -> tuple[dict[str, Any], np.ndarray]:
    a = g.adjacency
    n = len(a)
    edges = int((a > 0).sum())
    observed = _graph_values(a, seed=seed, resolution=resolution, communities=True, louvain=louvain)
    draws: dict[str, dict[str, list[float | None]]] = {}
    for model in null_models:
        make = NULL_MODELS[model]
        rng = _stream(seed, f"null model {model}")
        found: dict[str, list[float | None]] = {
            key: [] for key in ("clustering", "path_length", "global_efficiency", "modularity")
        }
        for _ in range(null_count):
            null = make(a, rng, blocks=g.population)
            louvain_seed = int(rng.integers(2**31 - 1))
            values = _graph_values(
                null,
                seed=louvain_seed,
                resolution=resolution,
                communities=modularity_nulls,
                louvain=louvain,
            )
            for key in found:
                found[key].append(values.get(key))
            if on_null is not None:
                on_null()
        draws[model] = found

    def with_nulls(key: str, unit: str | None = None, **extra: Any) -> dict[str, Any]:
        stats = {
            model: null_statistics(observed[key], draws[model][key]).as_dict()
            for model in null_models
            if any(v is not None for v in draws[model][key])
        }
        return _measure(observed[key], unit, **extra, **({"nulls": stats} if stats else {}))

    labels = observed["labels"]
    sizes = np.bincount(labels).tolist()
    section: dict[str, Any] = {
        "kind": g.kind,
        "directed": True,
        "populations": [g.names[i] for i in np.unique(g.population)],
        "nodes": n,
        "edges": edges,
        "density": edges / (n * (n - 1)) if n > 1 else None,
        "modularity": with_nulls(
            "modularity",
            communities=len(sizes),
            community_sizes=sizes,
            resolution=resolution,
            method=f"Louvain ({louvain}), seeded",
        ),
        "clustering": with_nulls("clustering", method="Fagiolo (directed weighted), mean"),
        "path_length": with_nulls(
            "path_length",
            "strongest-edge lengths",
            reachable=observed["reachable"],
            method="mean over joined pairs; edge length 1 / (w / max w)",
        ),
        "global_efficiency": with_nulls("global_efficiency"),
        "small_world": _small_world(observed, draws, null_models),
    }
    if g.lengths is None:
        section["communicability_wiring_cost"] = _unavailable(
            "needs delays (delays='spatial' or 'free')", "weight x space units"
        )
    else:
        section["communicability_wiring_cost"] = _measure(
            graph.communicability_wiring_cost(a, np.nan_to_num(g.lengths)),
            "weight x space units",
        )
    return section, labels


def _small_world(
    observed: dict[str, Any], draws: dict[str, dict[str, list]], null_models: Sequence[str]
) -> dict[str, Any]:
    by_model: dict[str, Any] = {}
    for model in null_models:
        c_null = [v for v in draws[model]["clustering"] if v is not None and math.isfinite(v)]
        l_null = [v for v in draws[model]["path_length"] if v is not None and math.isfinite(v)]
        if not c_null or not l_null:
            continue
        c_mean, l_mean = float(np.mean(c_null)), float(np.mean(l_null))
        index = graph.small_world_index(
            observed["clustering"], observed["path_length"], c_mean, l_mean
        )
        distribution = [
            graph.small_world_index(c, p, c_mean, l_mean)
            if c is not None and p is not None
            else None
            for c, p in zip(draws[model]["clustering"], draws[model]["path_length"], strict=True)
        ]
        by_model[model] = {"index": index} | null_statistics(index, distribution).as_dict()
    headline = SMALL_WORLD_NULL if SMALL_WORLD_NULL in by_model else next(iter(by_model), None)
    value = by_model[headline]["index"] if headline is not None else None
    out = _measure(value, null_model=headline, definition="(C / C_null) / (L / L_null)")
    if by_model:
        out["nulls"] = by_model
    if value is None:
        out["unavailable"] = (
            "no nulls"
            if not by_model
            else "undefined: no clustering in the graph or its nulls "
            "(a layered feed-forward graph has no triangles)"
        )
    return out


# --------------------------------------------------------------------------- space


def _space_section(
    net: SpatialSNN,
    activity: Activity | None,
    *,
    null_count: int,
    seed: int,
    ridge_alpha: float,
    folds: int,
    neighbours: int,
    ordered_inputs: bool,
) -> tuple[dict[str, Any], np.ndarray | None]:
    section: dict[str, Any] = {}
    tuning = None
    if activity is not None:
        tuning = function.class_rates(activity.rates, activity.labels, activity.num_classes)
    if net.delay_mode != "spatial":
        reason = _positions_reason(net)
        for key in (
            "moran_i",
            "distance_tuning_correlation",
            "ridge_r2",
            "input_order_alignment",
        ):
            section[key] = _unavailable(reason)
        return section, tuning
    hidden = list(range(1, len(net.hidden_sizes) + 1))
    positions = _positions(net, hidden)
    section["moran_i"], section["distance_tuning_correlation"] = _functional_space(
        tuning, positions, null_count=null_count, seed=seed, neighbours=neighbours
    )
    section["ridge_r2"] = _ridge(
        net, null_count=null_count, rng=_stream(seed, "ridge_r2"), alpha=ridge_alpha, folds=folds
    )
    section["input_order_alignment"] = _order(
        net,
        null_count=null_count,
        rng=_stream(seed, "input_order_alignment"),
        ordered=ordered_inputs,
    )
    return section, tuning


def _functional_space(
    tuning: np.ndarray | None,
    positions: np.ndarray,
    *,
    null_count: int,
    seed: int,
    neighbours: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    if tuning is None:
        reason = "needs recorded activity (spsnn analyze runs a data split)"
        return _unavailable(reason), _unavailable(reason)
    use = function.tuned(tuning)
    count = int(use.sum())
    preferred = function.preferred_class(tuning)[use]
    if count < neighbours + 2:
        moran = _unavailable(f"needs at least {neighbours + 2} tuned hidden neurons, found {count}")
    else:
        classes = tuning.shape[0]
        one_hot = np.eye(classes)[preferred]
        weights = space.knn_weights(positions[use], neighbours)
        value = space.moran_i(one_hot, weights)
        values = _permutation_nulls(
            lambda p: space.moran_i(one_hot[p], weights),
            null_count,
            count,
            _stream(seed, "moran_i"),
        )
        moran = _with_nulls(
            value,
            values,
            neurons=count,
            neighbours=neighbours,
            expected=-1.0 / (count - 1),
            variable="preferred class (one-hot), tuned hidden neurons",
        )
    if count < 3:
        correlation = _unavailable(f"needs at least 3 tuned hidden neurons, found {count}")
    else:
        similarity = function.tuning_similarity(tuning[:, use])
        distances = space.pairwise_distances(positions[use])
        d = space.upper_pairs(distances)
        value = space.pearson(d, space.upper_pairs(similarity))
        values = _permutation_nulls(
            lambda p: space.pearson(d, space.upper_pairs(similarity[np.ix_(p, p)])),
            null_count,
            count,
            _stream(seed, "distance_tuning_correlation"),
        )
        correlation = _with_nulls(
            value,
            values,
            neurons=count,
            pairs=len(d),
            definition="Pearson r of pairwise distance and tuning similarity (signal correlation)",
        )
    return moran, correlation


def _ridge(
    net: SpatialSNN, *, null_count: int, rng: np.random.Generator, alpha: float, folds: int
) -> dict[str, Any]:
    first = net.layers[0]
    features = _weights(first)  # (H_1, C_in): each hidden neuron's input weights
    targets = net.positions[1].coords.detach().double().cpu().numpy()
    n = len(targets)
    k = min(folds, n)
    if n < 3:
        return _unavailable(f"needs at least 3 neurons in hidden 1, found {n}")
    seed = int(rng.integers(2**31 - 1))

    def r2(order: np.ndarray) -> float:
        return space.ridge_cv_r2(
            features, targets[order], alpha=alpha, folds=k, rng=np.random.default_rng(seed)
        )

    value = r2(np.arange(n))
    values = _permutation_nulls(r2, null_count, n, rng)
    return _with_nulls(
        value,
        values,
        alpha=alpha,
        folds=k,
        features=features.shape[1],
        neurons=n,
        definition="cross-validated R^2 of hidden 1's positions from its input weights",
    )


def _order(
    net: SpatialSNN, *, null_count: int, rng: np.random.Generator, ordered: bool
) -> dict[str, Any]:
    if not ordered:
        return _unavailable(
            "the inputs are not ordered (ordered_inputs=False; spsnn analyze sets it for SHD/SSC)"
        )
    preferred = space.preferred_positions(
        _weights(net.layers[0]), net.positions[1].coords.detach().double().cpu().numpy()
    )
    index = np.arange(net.num_inputs, dtype=np.float64)
    value = space.order_alignment(index, preferred)
    if not math.isfinite(value):
        return _unavailable(
            f"needs more inputs than D + 1 with weight, found {net.num_inputs} inputs"
        )
    values = _permutation_nulls(
        lambda p: space.order_alignment(index[p], preferred), null_count, len(index), rng
    )
    return _with_nulls(
        value,
        values,
        inputs=net.num_inputs,
        definition="multiple correlation of the input index with its preferred target position",
    )


def _function_section(activity: Activity | None, tuning: np.ndarray | None) -> dict[str, Any]:
    if activity is None or tuning is None:
        return {"unavailable": "needs recorded activity (spsnn analyze runs a data split)"}
    use = function.tuned(tuning)
    preferred = function.preferred_class(tuning)
    silent = activity.rates.max(0) <= 0
    return {
        "samples": len(activity.labels),
        "classes": activity.num_classes,
        "hidden_neurons": activity.rates.shape[1],
        "mean_rate": _measure(float(activity.rates.mean()), "spikes per step"),
        "silent_fraction": _measure(float(silent.mean())),
        "tuned_fraction": _measure(float(use.mean())),
        "preferred_class_counts": np.bincount(
            preferred[preferred >= 0], minlength=activity.num_classes
        ).tolist(),
    }


# --------------------------------------------------------------------------- entry points


def analyze(
    net: SpatialSNN,
    activity: Activity | None = None,
    *,
    nulls: int = 100,
    seed: int = 0,
    graph_kind: GraphChoice = "auto",
    null_models: Sequence[str] = ("weight_shuffle", "strength"),
    resolution: float = 1.0,
    modularity_nulls: bool = True,
    louvain: graph.LouvainMethod = "numpy",
    ridge_alpha: float = 1.0,
    folds: int = 5,
    neighbours: int = 5,
    ordered_inputs: bool = False,
    on_null: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Every measure of ``net`` (and of its recorded ``activity``), as a JSON-ready dict.

    Args:
        net: the network.
        activity: :func:`record_activity` of a data split; None leaves the functional
            measures out (marked unavailable).
        nulls: null networks per null model (and permutations per permutation test).
        seed: seeds every null, permutation, fold split and Louvain run.
        graph_kind: ``"auto"``, ``"all"`` or ``"hidden"`` (see the module doc).
        null_models: names in :data:`~spatial_layers.analysis.nulls.NULL_MODELS`.
        resolution: modularity resolution :math:`\\gamma`.
        modularity_nulls: also run Louvain on every null network (the slowest part).
        louvain: ``"numpy"`` or ``"networkx"``
            (:func:`~spatial_layers.analysis.graph.louvain_communities`).
        ridge_alpha: the ridge penalty of :func:`~spatial_layers.analysis.space.ridge_cv_r2`.
        folds: its number of cross-validation folds.
        neighbours: k of Moran's I's k-nearest-neighbour weights.
        ordered_inputs: the input channels are ordered (SHD's frequencies): measure the
            alignment of the index with the preferred target positions.
        on_null: called after every null network (a progress bar); there are
            ``nulls * len(null_models)``.

    Returns:
        ``{"format", "settings", "network", "wiring", "graph", "space", "function",
        "summary"}``; ``summary`` holds the headline scalars (see :func:`headline`).

    Raises:
        ModuleNotFoundError: ``louvain="networkx"`` without networkx installed.
    """
    _check_network(net)
    _check_finite(net)
    unknown = [m for m in null_models if m not in NULL_MODELS]
    if unknown:
        raise ValueError(f"unknown null models {unknown}; choose from {tuple(NULL_MODELS)}")
    if isinstance(nulls, bool) or not isinstance(nulls, int) or nulls < 0:
        raise ValueError(f"nulls must be an int >= 0, got {nulls!r}")
    g = network_graph(net, graph_kind)
    settings = {
        "nulls": nulls,
        "null_models": list(null_models),
        "seed": seed,
        "graph": g.kind,
        "resolution": resolution,
        "modularity_nulls": modularity_nulls,
        "louvain": louvain,
        "ridge_alpha": ridge_alpha,
        "folds": folds,
        "neighbours": neighbours,
        "ordered_inputs": ordered_inputs,
        "small_world_null": SMALL_WORLD_NULL,
    }
    wiring_part = _wiring_section(net)
    graph_part, labels = _graph_section(
        g,
        null_count=nulls,
        null_models=null_models,
        seed=seed,
        resolution=resolution,
        modularity_nulls=modularity_nulls,
        louvain=louvain,
        on_null=on_null,
    )
    space_part, tuning = _space_section(
        net,
        activity,
        null_count=nulls,
        seed=seed,
        ridge_alpha=ridge_alpha,
        folds=folds,
        neighbours=neighbours,
        ordered_inputs=ordered_inputs,
    )
    space_part["distance_weight_correlation"] = wiring_part["total"]["distance_weight_correlation"]
    graph_part["node_population"] = g.population.tolist()
    graph_part["node_community"] = labels.tolist()
    result = {
        "format": FORMAT_VERSION,
        "settings": settings,
        "network": _network_section(net),
        "wiring": wiring_part,
        "graph": graph_part,
        "space": space_part,
        "function": _function_section(activity, tuning),
    }
    result["summary"] = headline(result)
    return _finite(result)


def _network_section(net: SpatialSNN) -> dict[str, Any]:
    return {
        "delays": net.delay_mode,
        "dim": net.dim,
        "max_delay": net.max_delay,
        "populations": dict(
            zip(
                population_names(net),
                [net.num_inputs, *net.hidden_sizes, net.num_classes],
                strict=True,
            )
        ),
        "recurrent": bool(net.recurrent_layers),
    }


def headline(result: dict[str, Any]) -> dict[str, float | None]:
    """The headline scalars of an :func:`analyze` result, flat (what ``spsnn report`` shows
    and the callback logs): total wiring cost, mean and weighted mean synapse length,
    wiring efficiency, delay fractions at 0 and at ``max_delay``, the modularity and its
    communities, clustering, path length, global efficiency, the small-world index and
    its z-score, Moran's I, the distance-tuning and distance-weight correlations, the
    ridge R^2 and the input-order alignment (None where unavailable)."""
    total, g, s = result["wiring"]["total"], result["graph"], result["space"]
    small = g["small_world"]
    headline_null = small.get("null_model")
    z = small.get("nulls", {}).get(headline_null, {}).get("z") if headline_null else None
    return {
        **_wiring_values(total),
        "modularity": g["modularity"]["value"],
        "communities": g["modularity"].get("communities"),
        "clustering": g["clustering"]["value"],
        "path_length": g["path_length"]["value"],
        "global_efficiency": g["global_efficiency"]["value"],
        "small_world": small["value"],
        "small_world_z": z,
        "moran_i": s["moran_i"]["value"],
        "distance_tuning_correlation": s["distance_tuning_correlation"]["value"],
        "distance_weight_correlation": s["distance_weight_correlation"]["value"],
        "ridge_r2": s["ridge_r2"]["value"],
        "input_order_alignment": s["input_order_alignment"]["value"],
    }


def _wiring_values(total: dict[str, Any]) -> dict[str, float | None]:
    """The flat wiring scalars of a wiring section's ``total``."""
    return {
        "wiring_cost": total["wiring_cost"]["value"],
        "mean_length": total["mean_length"]["value"],
        "weighted_mean_length": total["weighted_mean_length"]["value"],
        "wiring_efficiency": total["wiring_efficiency"]["value"],
        "delay_zero_fraction": total["delays"]["zero"],
        "delay_max_fraction": total["delays"]["max"],
        "delay_clamped_high_fraction": total["delays"]["clamped_high"],
    }


def cheap_measures(
    net: SpatialSNN, *, seed: int = 0, graph_kind: GraphChoice = "auto", communities: bool = True
) -> dict[str, float | None]:
    """The measures that need neither nulls nor activity, flat: wiring cost, lengths,
    efficiency, delay fractions, distance-weight correlation, and of the graph the
    modularity and number of its Louvain communities (with ``communities``), clustering,
    path length and global efficiency. None where unavailable. A fraction of a second
    for the Yin-Yang recipes; what the ``LayoutAnalysis`` callback logs.

    Example:
        >>> m = cheap_measures(SpatialSNN(5, 3, [16], max_delay=4), communities=False)
        >>> sorted(k for k, v in m.items() if v is None)
        ['communities', 'modularity']
    """
    _check_network(net)
    _check_finite(net)
    wiring_part = _wiring_section(net)
    total = wiring_part["total"]
    g = network_graph(net, graph_kind)
    values = _graph_values(g.adjacency, seed=seed, resolution=1.0, communities=communities)
    labels = values.get("labels")
    return _finite(
        {
            **_wiring_values(total),
            "distance_weight_correlation": total["distance_weight_correlation"]["value"],
            "modularity": values.get("modularity"),
            "communities": None if labels is None else int(labels.max() + 1),
            "clustering": values["clustering"],
            "path_length": values["path_length"],
            "global_efficiency": values["global_efficiency"],
        }
    )
