r"""Measures of learned layouts: wiring, graph structure against null networks, space and
function.

``from spatial_layers import analysis``, then ``analysis.analyze(net, activity)`` for
everything (what ``spsnn analyze`` writes as ``analysis.json``), or the pure functions
of one module:

* :mod:`~spatial_layers.analysis.wiring`: wiring cost :math:`\sum |w|\,\ell`, mean
  synapse length, normalised wiring efficiency, delay histogram and the fractions of
  delays at 0 and at ``max_delay`` (saturation);
* :mod:`~spatial_layers.analysis.graph`: weighted directed clustering (Fagiolo),
  characteristic path length, global efficiency, modularity (Leicht-Newman) with
  Louvain communities, communicability and its wiring cost, the small-world index;
* :mod:`~spatial_layers.analysis.nulls`: weight-shuffled and degree/strength-preserving
  null networks, null statistics (mean, sd, z, permutation p);
* :mod:`~spatial_layers.analysis.space`: Pearson correlation, Moran's I, ridge
  regression R^2 (k-fold), preferred target positions and their alignment with an
  ordered input;
* :mod:`~spatial_layers.analysis.function`: tuning curves (class-conditional rates),
  preferred classes, signal correlations;
* :mod:`~spatial_layers.analysis.network`: all of them for a
  :class:`~spatial_layers.SpatialSNN` (which graph, which layers, what needs positions),
  :func:`record_activity`, :func:`analyze`, :func:`cheap_measures`.

numpy and torch only; the Louvain communities need networkx
(``pip install "spsnn[analysis]"``), imported when they are computed.
"""

from spatial_layers.analysis import function, graph, nulls, space, wiring
from spatial_layers.analysis.network import (
    GRAPH_CHOICES,
    NEEDS_POSITIONS,
    Activity,
    NetworkGraph,
    analyze,
    cheap_measures,
    connections,
    headline,
    layer_wiring,
    network_graph,
    population_names,
    record_activity,
    synapse_lengths,
)

__all__ = [
    "GRAPH_CHOICES",
    "NEEDS_POSITIONS",
    "Activity",
    "NetworkGraph",
    "analyze",
    "cheap_measures",
    "connections",
    "function",
    "graph",
    "headline",
    "layer_wiring",
    "network_graph",
    "nulls",
    "population_names",
    "record_activity",
    "space",
    "synapse_lengths",
    "wiring",
]
