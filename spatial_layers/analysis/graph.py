r"""Weighted graph measures of a connectivity matrix: clustering, path length, efficiency,
modularity, communities, communicability.

Conventions (every function here):

* ``adjacency`` is an (N, N) array of non-negative weights with ``adjacency[i, j]`` the
  weight of the edge **i -> j** (row = source, as networkx's ``from_numpy_array`` and
  bctpy read a matrix; a layer's ``weight`` is (C_out, C_in), its transpose). A network's
  graph uses :math:`|w^{\mathrm{eff}}|`: an inhibitory synapse is as strong a connection
  as an excitatory one of the same magnitude. Self-loops are ignored.
* ``directed=True`` (the default) keeps the direction; ``directed=False`` needs a
  symmetric matrix and treats each pair once.
* Weights are normalised by their maximum, :math:`\hat w = w / \max w`, before clustering
  and path lengths (as networkx and bctpy do), so those measures do not depend on the
  weights' scale. A path's length is the sum of its edges' lengths
  :math:`\ell_{ij} = 1 / \hat w_{ij}` (>= 1): strong edges are short.

The algorithms are numpy (Floyd-Warshall for shortest paths, matrix products for
triangles, a vectorised Louvain for communities); networkx (``pip install
"spsnn[analysis]"``) is optional: :func:`louvain_communities` can call its
implementation instead, and the tests check these measures against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

__all__ = [
    "LOUVAIN_METHODS",
    "average_clustering",
    "characteristic_path_length",
    "clustering",
    "communicability",
    "communicability_wiring_cost",
    "community_labels",
    "global_efficiency",
    "louvain_communities",
    "modularity",
    "normalized_weights",
    "path_lengths",
    "small_world_index",
]


def _checked(adjacency: np.ndarray, directed: bool) -> np.ndarray:
    """``adjacency`` as a float64 (N, N) array without self-loops; raises ValueError on
    a bad one (not square, negative or non-finite weights, asymmetric when undirected)."""
    a = np.array(adjacency, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"adjacency must be a square (N, N) matrix, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("adjacency has NaN or infinite weights")
    if (a < 0).any():
        raise ValueError("adjacency weights must be >= 0 (a network's graph uses |w|)")
    np.fill_diagonal(a, 0.0)
    if not directed and not np.allclose(a, a.T):
        raise ValueError("directed=False needs a symmetric adjacency; symmetrise it first")
    return a


def normalized_weights(adjacency: np.ndarray) -> np.ndarray:
    r""":math:`\hat w = w / \max w` (zeros stay zero; an empty graph stays all zero).

    Example:
        >>> normalized_weights(np.array([[0.0, 2.0], [4.0, 0.0]]))
        array([[0. , 0.5],
               [1. , 0. ]])
    """
    a = _checked(adjacency, directed=True)
    top = a.max(initial=0.0)
    return a / top if top > 0 else a


def clustering(adjacency: np.ndarray, *, directed: bool = True) -> np.ndarray:
    r"""Weighted clustering coefficient of every node (dimensionless, in [0, 1]).

    Undirected (Onnela et al. 2005), with :math:`k_i` the number of neighbours:

    .. math:: C_i = \frac{1}{k_i (k_i - 1)} \sum_{j,k}
        (\hat w_{ij} \hat w_{jk} \hat w_{ki})^{1/3}
        = \frac{[\hat W^{1/3}]^3_{ii}}{k_i (k_i - 1)}

    Directed (Fagiolo 2007; every kind of directed triangle counts), with
    :math:`S = \hat W^{1/3}` elementwise, :math:`d^{tot}_i` the in- plus out-degree and
    :math:`d^{\leftrightarrow}_i` the number of reciprocated edges:

    .. math:: C_i = \frac{[(S + S^T)^3]_{ii}}
        {2\,[d^{tot}_i (d^{tot}_i - 1) - 2 d^{\leftrightarrow}_i]}

    Both are ``networkx.clustering(G, weight="weight")``. A node with fewer than two
    neighbours has :math:`C_i = 0`.

    Args:
        adjacency: (N, N) non-negative weights, ``[i, j]`` the edge i -> j.
        directed: Fagiolo's directed form, or Onnela's (symmetric ``adjacency``).

    Returns:
        (N,) clustering coefficients.

    Example:
        >>> triangle = np.ones((3, 3)) - np.eye(3)
        >>> clustering(triangle, directed=False)
        array([1., 1., 1.])
    """
    a = _checked(adjacency, directed)
    top = a.max(initial=0.0)
    s = np.cbrt(a / top) if top > 0 else a
    binary = (a > 0).astype(np.float64)
    if directed:
        both = s + s.T
        triangles = ((both @ both) * both.T).sum(1)  # diag(both^3)
        total = binary.sum(0) + binary.sum(1)
        reciprocal = np.einsum("ij,ji->i", binary, binary)
        possible = 2.0 * (total * (total - 1) - 2 * reciprocal)
    else:
        triangles = ((s @ s) * s.T).sum(1)
        degree = binary.sum(1)
        possible = degree * (degree - 1)
    out = np.zeros(len(a))
    np.divide(triangles, possible, out=out, where=possible > 0)
    return out


def average_clustering(adjacency: np.ndarray, *, directed: bool = True) -> float:
    """Mean of :func:`clustering` over all nodes (those with fewer than two neighbours
    count as 0, as ``networkx.average_clustering``'s default)."""
    values = clustering(adjacency, directed=directed)
    return float(values.mean()) if len(values) else 0.0


def path_lengths(adjacency: np.ndarray, *, directed: bool = True) -> np.ndarray:
    r"""Shortest weighted path length between every ordered pair of nodes.

    Edge lengths are :math:`\ell_{ij} = 1/\hat w_{ij}` (:math:`\hat w = w / \max w`, so
    every edge is at least 1 long); Floyd-Warshall over them. Dimensionless (in units of
    the strongest edge's length).

    Returns:
        (N, N) lengths, ``[i, j]`` from i to j; 0 on the diagonal, ``inf`` where j cannot
        be reached from i.

    Example:
        >>> chain = np.array([[0, 1, 0], [0, 0, 0.5], [0, 0, 0]])
        >>> path_lengths(chain)
        array([[ 0.,  1.,  3.],
               [inf,  0.,  2.],
               [inf, inf,  0.]])
    """
    a = _checked(adjacency, directed)
    top = a.max(initial=0.0)
    lengths = np.full(a.shape, np.inf)
    if top > 0:
        np.divide(top, a, out=lengths, where=a > 0)
    np.fill_diagonal(lengths, 0.0)
    for k in range(len(a)):
        np.minimum(lengths, lengths[:, k, None] + lengths[None, k, :], out=lengths)
    return lengths


def characteristic_path_length(
    adjacency: np.ndarray, *, directed: bool = True, lengths: np.ndarray | None = None
) -> tuple[float, float]:
    r"""Characteristic path length and the fraction of ordered pairs it averages over.

    .. math:: L = \frac{1}{|P|} \sum_{(i, j) \in P} d_{ij}, \qquad
        P = \{(i, j): i \ne j,\ d_{ij} < \infty\}

    with :math:`d` from :func:`path_lengths`. Pairs without a path are left out (a
    feed-forward graph reaches backwards nowhere) and counted by the second value,
    :math:`|P| / (N(N-1))`; :func:`global_efficiency` counts them as 0 instead.

    Args:
        adjacency: (N, N) non-negative weights, ``[i, j]`` the edge i -> j.
        directed: follow the edges' direction.
        lengths: :func:`path_lengths` of ``adjacency`` when already computed.

    Returns:
        ``(L, reachable)``; ``(nan, 0.0)`` when no pair is joined.
    """
    d = path_lengths(adjacency, directed=directed) if lengths is None else lengths
    n = len(d)
    off = ~np.eye(n, dtype=bool)
    finite = np.isfinite(d) & off
    pairs = n * (n - 1)
    if not finite.any():
        return float("nan"), 0.0
    return float(d[finite].mean()), float(finite.sum() / pairs)


def global_efficiency(
    adjacency: np.ndarray, *, directed: bool = True, lengths: np.ndarray | None = None
) -> float:
    r"""Global efficiency (Latora & Marchiori 2001), dimensionless in [0, 1]:

    .. math:: E = \frac{1}{N(N-1)} \sum_{i \ne j} \frac{1}{d_{ij}}

    with :math:`d` from :func:`path_lengths` (``1/inf = 0``). With all weights equal on
    an undirected graph this is ``networkx.global_efficiency``.

    Example:
        >>> global_efficiency(np.ones((4, 4)) - np.eye(4), directed=False)
        1.0
    """
    d = path_lengths(adjacency, directed=directed) if lengths is None else lengths
    n = len(d)
    if n < 2:
        return 0.0
    off = ~np.eye(n, dtype=bool)
    return float((1.0 / d[off]).sum() / (n * (n - 1)))


def community_labels(communities: Sequence[Sequence[int]], n: int) -> np.ndarray:
    """(n,) community index of every node from a partition (a list of node sets).

    Raises ValueError unless every node 0..n-1 is in exactly one community.

    Example:
        >>> community_labels([{2, 0}, {1}], 3)
        array([0, 1, 0])
    """
    labels = np.full(n, -1)
    for index, members in enumerate(communities):
        for node in members:
            if not 0 <= int(node) < n or labels[int(node)] != -1:
                raise ValueError(f"node {node} is outside 0..{n - 1} or in two communities")
            labels[int(node)] = index
    if (labels < 0).any():
        raise ValueError(f"nodes {np.flatnonzero(labels < 0).tolist()} are in no community")
    return labels


def modularity(
    adjacency: np.ndarray,
    labels: np.ndarray | Sequence[int],
    *,
    resolution: float = 1.0,
    directed: bool = True,
) -> float:
    r"""Weighted modularity Q of a partition (dimensionless, at most 1).

    Directed (Leicht & Newman 2008), :math:`m = \sum_{ij} w_{ij}`,
    :math:`s^{out}_i = \sum_j w_{ij}`, :math:`s^{in}_j = \sum_i w_{ij}`:

    .. math:: Q = \frac{1}{m} \sum_{ij} \Big[w_{ij}
        - \gamma \frac{s^{out}_i s^{in}_j}{m}\Big] \delta(c_i, c_j)

    Undirected (Newman 2004), :math:`2m = \sum_{ij} w_{ij}`, :math:`s_i = \sum_j w_{ij}`:

    .. math:: Q = \frac{1}{2m} \sum_{ij} \Big[w_{ij}
        - \gamma \frac{s_i s_j}{2m}\Big] \delta(c_i, c_j)

    Both are ``networkx.community.modularity`` (self-loops dropped here).

    Args:
        adjacency: (N, N) non-negative weights, ``[i, j]`` the edge i -> j.
        labels: (N,) community index of every node (:func:`community_labels`).
        resolution: :math:`\gamma`; larger values favour smaller communities.
        directed: Leicht-Newman's directed form, or Newman's (symmetric ``adjacency``).

    Returns:
        Q; 0.0 for a graph without edges.

    Example:
        >>> two_pairs = np.kron(np.eye(2), np.ones((2, 2))) - np.eye(4)
        >>> modularity(two_pairs, [0, 0, 1, 1], directed=False)
        0.5
    """
    a = _checked(adjacency, directed)
    labels = np.asarray(labels)
    if labels.shape != (len(a),):
        raise ValueError(f"labels must have shape ({len(a)},), got {labels.shape}")
    m = a.sum()
    if m == 0:
        return 0.0
    same = labels[:, None] == labels[None, :]
    expected = np.outer(a.sum(1), a.sum(0)) / m
    return float(((a - resolution * expected) * same).sum() / m)


LouvainMethod = Literal["numpy", "networkx"]
LOUVAIN_METHODS: tuple[str, ...] = ("numpy", "networkx")
#: Louvain stops when a level raises the modularity by no more than this (networkx's default).
LOUVAIN_THRESHOLD = 1e-7


def louvain_communities(
    adjacency: np.ndarray,
    *,
    seed: int,
    resolution: float = 1.0,
    directed: bool = True,
    method: LouvainMethod = "numpy",
) -> np.ndarray:
    r"""Communities that maximise :func:`modularity`, by the Louvain method (Blondel et al.
    2008; the directed gains of Dugué & Perez 2015), seeded.

    Each level moves single nodes, in a random order, to the neighbouring community with
    the largest modularity gain (if positive), sweeping until no node moves; then merges
    every community into one node and repeats, until a level raises Q by no more than
    :data:`LOUVAIN_THRESHOLD`. The gain of moving node i (out-/in-strength
    :math:`s^{out}_i, s^{in}_i`) into community D is, up to terms that do not depend on D,

    .. math:: \Delta Q(i \to D) = \frac{1}{m}\Big[w_{i \to D} + w_{D \to i}
        - \gamma \frac{s^{out}_i S^{in}_D + s^{in}_i S^{out}_D}{m}\Big]

    ``method="numpy"`` is this module's vectorised implementation (the same algorithm as
    networkx's, dense matrices: fast enough for hundreds of null networks);
    ``"networkx"`` calls ``networkx.community.louvain_communities`` (an optional
    dependency: ``pip install "spsnn[analysis]"``). Both find partitions of about the
    same Q; they visit nodes in different random orders, so the partitions may differ.

    Args:
        adjacency: (N, N) non-negative weights, ``[i, j]`` the edge i -> j.
        seed: seeds the order in which nodes are visited (same seed, same partition).
        resolution: :math:`\gamma` of :func:`modularity`.
        directed: optimise the directed modularity (else: symmetric ``adjacency``).
        method: ``"numpy"`` or ``"networkx"``.

    Returns:
        (N,) community index of every node, communities numbered by decreasing size.

    Example:
        >>> two_triangles = np.kron(np.eye(2), np.ones((3, 3)))
        >>> two_triangles[2, 3] = two_triangles[3, 2] = 0.1
        >>> louvain_communities(two_triangles, seed=0, directed=False)
        array([0, 0, 0, 1, 1, 1])
    """
    if method not in LOUVAIN_METHODS:
        raise ValueError(f"method must be one of {LOUVAIN_METHODS}, got {method!r}")
    a = _checked(adjacency, directed)
    if method == "networkx":
        nx = _networkx("louvain_communities")
        graph = nx.from_numpy_array(a, create_using=nx.DiGraph if directed else nx.Graph)
        found = nx.community.louvain_communities(
            graph, weight="weight", resolution=resolution, seed=int(seed)
        )
        return _ordered(community_labels(found, len(a)))
    rng = np.random.default_rng(seed)
    labels = np.arange(len(a))
    if a.sum() == 0:
        return labels
    # The undirected modularity is the directed one of the symmetric matrix: one code path.
    current = a
    quality = modularity(a, labels, resolution=resolution, directed=directed)
    while True:
        moved, level = _louvain_level(current, resolution, rng)
        if not moved:
            break
        candidate = level[labels]
        gained = modularity(a, candidate, resolution=resolution, directed=directed)
        if gained - quality <= LOUVAIN_THRESHOLD:
            break
        labels, quality = candidate, gained
        members = np.eye(level.max() + 1)[level]  # (nodes, communities)
        current = members.T @ current @ members
    return _ordered(labels)


def _louvain_level(
    a: np.ndarray, resolution: float, rng: np.random.Generator
) -> tuple[bool, np.ndarray]:
    """One Louvain level on (n, n) ``a`` (self-loops allowed: merged communities):
    (whether any node moved, the community of every node numbered 0..k-1)."""
    n = len(a)
    m = a.sum()
    s_out, s_in = a.sum(1), a.sum(0)
    both = a + a.T
    np.fill_diagonal(both, 0.0)
    labels = np.arange(n)
    total_out, total_in = s_out.copy(), s_in.copy()  # of every community
    scale = resolution / m
    tolerance = 1e-12 * m
    weighted_in, weighted_out, gain = np.empty(n), np.empty(n), np.empty(n)
    moved_any = False
    while True:
        moves = 0
        for i in rng.permutation(n).tolist():
            own = int(labels[i])
            out_i, in_i = float(s_out[i]), float(s_in[i])
            total_out[own] -= out_i
            total_in[own] -= in_i
            links = np.bincount(labels, weights=both[i], minlength=n)
            np.multiply(total_in, scale * out_i, out=weighted_in)
            np.multiply(total_out, scale * in_i, out=weighted_out)
            np.subtract(links, weighted_in, out=gain)
            gain -= weighted_out
            stay = gain[own]
            gain[links <= 0] = -np.inf  # only communities i links to are candidates
            best = int(gain.argmax())
            if not gain[best] > stay + tolerance:
                best = own
            labels[i] = best
            total_out[best] += out_i
            total_in[best] += in_i
            moves += best != own
        if moves == 0:
            break
        moved_any = True
    return moved_any, np.unique(labels, return_inverse=True)[1]


def _ordered(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered by decreasing community size (ties: the smallest node first)."""
    labels = np.asarray(labels)
    sizes = np.bincount(labels)
    first = np.full(len(sizes), len(labels))
    np.minimum.at(first, labels, np.arange(len(labels)))
    order = np.lexsort((first, -sizes))
    rank = np.empty(len(sizes), dtype=np.int64)
    rank[order] = np.arange(len(sizes))
    return rank[labels]


def _networkx(what: str):
    try:
        import networkx
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f'spatial_layers.analysis.{what} needs networkx: pip install "spsnn[analysis]"',
            name="networkx",
        ) from error
    return networkx


def communicability(adjacency: np.ndarray) -> np.ndarray:
    r"""Normalised communicability (Crofts & Higham 2009; seRNN, Achterberg et al. 2023):

    .. math:: G = \exp\big(S^{-1/2}\, W\, S^{-1/2}\big), \qquad S = \mathrm{diag}(s_i),\
        s_i = \sum_j w_{ij}

    (row sums, the out-strength, as the seRNN code; a node without out-going weight
    gets :math:`s_i^{-1/2} = 0`). :math:`G_{ij}` sums the walks from i to j of every
    length, the longer ones discounted by :math:`1/k!`.

    Returns:
        (N, N) communicability, dimensionless.
    """
    a = _checked(adjacency, directed=True)
    strength = a.sum(1)
    scale = np.zeros_like(strength)
    np.power(strength, -0.5, out=scale, where=strength > 0)
    normalised = torch.from_numpy(scale[:, None] * a * scale[None, :])
    return torch.linalg.matrix_exp(normalised).numpy()


def communicability_wiring_cost(adjacency: np.ndarray, lengths: np.ndarray) -> float:
    r"""Communicability-weighted wiring cost, the seRNN regulariser (Achterberg et al. 2023):

    .. math:: C = \sum_{ij} w_{ij}\, \ell_{ij}\, G_{ij}

    with :math:`G` from :func:`communicability` and :math:`\ell_{ij}` the length of
    edge i -> j. A long edge costs more when it also lies on many short walks. Units:
    weight times space units.

    Args:
        adjacency: (N, N) non-negative weights, ``[i, j]`` the edge i -> j.
        lengths: (N, N) wire length of every edge (entries without an edge are ignored,
            NaN allowed there).
    """
    a = _checked(adjacency, directed=True)
    lengths = np.asarray(lengths, dtype=np.float64)
    if lengths.shape != a.shape:
        raise ValueError(f"lengths must have the adjacency's shape {a.shape}, got {lengths.shape}")
    edges = a > 0
    if not np.isfinite(lengths[edges]).all():
        raise ValueError("lengths must be finite where the adjacency has an edge")
    g = communicability(a)
    return float((a[edges] * lengths[edges] * g[edges]).sum())


def small_world_index(
    clustering_value: float,
    path_length: float,
    null_clustering: float,
    null_path_length: float,
) -> float | None:
    r"""Small-world index (Humphries & Gurney 2008) against null networks:

    .. math:: \sigma = \frac{C / C_{null}}{L / L_{null}}

    :math:`\sigma > 1`: more clustered than the nulls for a comparable path length.
    Returns None where it is undefined: no clustering in the nulls or the graph (a
    layered feed-forward graph has no triangles, nor have its nulls that keep the
    layers), or a path length that is 0 or not finite.

    Example:
        >>> small_world_index(0.5, 2.0, 0.1, 1.6)
        4.0
    """
    values = (clustering_value, path_length, null_clustering, null_path_length)
    if not all(np.isfinite(v) for v in values):
        return None
    if null_clustering <= 0 or clustering_value <= 0 or path_length <= 0 or null_path_length <= 0:
        return None
    return float((clustering_value / null_clustering) / (path_length / null_path_length))
