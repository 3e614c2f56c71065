"""Graph measures against networkx and against graphs with known answers.

Known answers: a planted partition (its communities are found and Q is what the
partition's edge fractions give), a ring lattice (clustering 3(k-2)/(4(k-1)) and the
exact mean ring distance), random graphs (clustering = density, path length as
Fronczak et al. 2004), and small-world indices (about 1 for a random graph, large for
a lattice and a Watts-Strogatz graph, as the closed forms give).
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from spatial_layers.analysis import graph, nulls

EULER_GAMMA = 0.5772156649


def random_weighted(n: int, p: float, seed: int, *, symmetric: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.random((n, n)) * (rng.random((n, n)) < p)
    if symmetric:
        a = np.triu(a, 1)
        a = a + a.T
    np.fill_diagonal(a, 0.0)
    return a


def erdos_renyi(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Directed G(n, p) with unit weights."""
    a = (rng.random((n, n)) < p).astype(float)
    np.fill_diagonal(a, 0.0)
    return a


def ring_lattice(n: int, k: int) -> np.ndarray:
    """Each node joined both ways to its k/2 nearest neighbours on each side."""
    a = np.zeros((n, n))
    for i in range(n):
        for step in range(1, k // 2 + 1):
            a[i, (i + step) % n] = a[(i + step) % n, i] = 1.0
    return a


def fronczak_path_length(n: int, mean_degree: float) -> float:
    """Mean shortest path of a random graph (Fronczak, Fronczak & Holyst 2004)."""
    return (math.log(n) - EULER_GAMMA) / math.log(mean_degree) + 0.5


def nx_graph(a: np.ndarray, directed: bool):
    return nx.from_numpy_array(a, create_using=nx.DiGraph if directed else nx.Graph)


def partition(labels: np.ndarray) -> list[set[int]]:
    return [set(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)]


# --------------------------------------------------------------------------- networkx


@pytest.mark.parametrize("directed", [True, False])
def test_clustering_equals_networkx(directed):
    a = random_weighted(40, 0.25, seed=1, symmetric=not directed)
    ours = graph.clustering(a, directed=directed)
    theirs = nx.clustering(nx_graph(a, directed), weight="weight")
    np.testing.assert_allclose(ours, [theirs[i] for i in range(len(a))], atol=1e-12)
    expected = nx.average_clustering(nx_graph(a, directed), weight="weight")
    assert graph.average_clustering(a, directed=directed) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("directed", [True, False])
@pytest.mark.parametrize("resolution", [1.0, 0.5, 2.0])
def test_modularity_equals_networkx(directed, resolution):
    a = random_weighted(30, 0.3, seed=2, symmetric=not directed)
    labels = np.random.default_rng(3).integers(0, 4, len(a))
    expected = nx.community.modularity(
        nx_graph(a, directed), partition(labels), weight="weight", resolution=resolution
    )
    ours = graph.modularity(a, labels, resolution=resolution, directed=directed)
    assert ours == pytest.approx(expected, abs=1e-12)


def test_weighted_path_lengths_equal_dijkstra_over_inverse_weights():
    a = random_weighted(35, 0.12, seed=4)
    lengths = np.where(a > 0, a.max() / np.where(a > 0, a, 1.0), 0.0)
    reference = dict(nx.all_pairs_dijkstra_path_length(nx_graph(lengths, True)))
    expected = np.full(a.shape, np.inf)
    for i, row in reference.items():
        for j, value in row.items():
            expected[i, j] = value
    np.testing.assert_allclose(graph.path_lengths(a), expected, atol=1e-12)
    assert (~np.isfinite(expected)).sum() > 0  # the test covers unreachable pairs too
    finite = np.isfinite(expected) & ~np.eye(len(a), dtype=bool)
    path_length, reachable = graph.characteristic_path_length(a)
    assert path_length == pytest.approx(expected[finite].mean())
    assert reachable == pytest.approx(finite.sum() / (len(a) * (len(a) - 1)))


def test_global_efficiency_equals_networkx_on_a_binary_graph():
    a = (random_weighted(40, 0.08, seed=5, symmetric=True) > 0).astype(float)
    expected = nx.global_efficiency(nx_graph(a, False))
    assert graph.global_efficiency(a, directed=False) == pytest.approx(expected, abs=1e-12)


def test_weighted_global_efficiency_is_the_mean_inverse_distance():
    a = random_weighted(25, 0.2, seed=6)
    d = graph.path_lengths(a)
    off = ~np.eye(len(a), dtype=bool)
    assert graph.global_efficiency(a) == pytest.approx((1 / d[off]).mean())


@pytest.mark.parametrize("directed", [True, False])
def test_numpy_louvain_does_as_well_as_networkx(directed):
    gaps = []
    for seed in range(4):
        a = random_weighted(60, 0.15, seed=10 + seed, symmetric=not directed)
        ours = graph.louvain_communities(a, seed=seed, directed=directed)
        theirs = graph.louvain_communities(a, seed=seed, directed=directed, method="networkx")
        q = graph.modularity(a, ours, directed=directed)
        gaps.append(q - graph.modularity(a, theirs, directed=directed))
    assert np.mean(gaps) > -0.01  # the same algorithm: about the same optimum


def test_louvain_is_seeded_and_numbered_by_size():
    a = random_weighted(50, 0.1, seed=7)
    first = graph.louvain_communities(a, seed=3)
    np.testing.assert_array_equal(first, graph.louvain_communities(a, seed=3))
    sizes = np.bincount(first)
    assert (np.diff(sizes) <= 0).all()


# --------------------------------------------------------------------------- known answers


def test_planted_partition_is_recovered():
    rng = np.random.default_rng(0)
    groups, size = 4, 30
    planted = np.repeat(np.arange(groups), size)
    same = planted[:, None] == planted[None, :]
    a = (rng.random(same.shape) < np.where(same, 0.4, 0.02)) * rng.uniform(0.5, 1.5, same.shape)
    np.fill_diagonal(a, 0.0)
    found = graph.louvain_communities(a, seed=0)
    # The same partition up to the communities' numbering.
    assert len(np.unique(found)) == groups
    assert all(len(np.unique(found[planted == g])) == 1 for g in range(groups))
    q = graph.modularity(a, found)
    assert q == pytest.approx(graph.modularity(a, planted))
    # Q = (fraction of weight inside) - sum_c s_out(c) s_in(c) / m^2, here about f - 1/4.
    inside = a[same].sum() / a.sum()
    assert q == pytest.approx(inside - 1 / groups, abs=0.02)
    # And far above what the same weights give when the edges are rearranged.
    rng_null = np.random.default_rng(1)
    null_q = [
        graph.modularity(n, graph.louvain_communities(n, seed=s))
        for s, n in enumerate(nulls.strength_preserving(a, rng_null) for _ in range(10))
    ]
    stats = nulls.null_statistics(q, null_q)
    assert stats.z > 10 and stats.p_greater == pytest.approx(1 / 11)


def test_ring_lattice_clustering_and_path_length_as_theory_gives():
    n, k = 100, 6
    a = ring_lattice(n, k)
    assert graph.average_clustering(a) == pytest.approx(3 * (k - 2) / (4 * (k - 1)))
    assert graph.average_clustering(a, directed=False) == pytest.approx(0.6)
    ring_distance = [math.ceil(min(m, n - m) / (k / 2)) for m in range(1, n)]
    path_length, reachable = graph.characteristic_path_length(a)
    assert path_length == pytest.approx(sum(ring_distance) / (n - 1))
    assert reachable == 1.0
    assert graph.global_efficiency(a) == pytest.approx(sum(1 / d for d in ring_distance) / (n - 1))


def test_random_graph_clustering_and_path_length_as_theory_gives():
    n, p = 200, 0.05
    rng = np.random.default_rng(2)
    values = [
        (graph.average_clustering(a), graph.characteristic_path_length(a)[0])
        for a in (erdos_renyi(n, p, rng) for _ in range(5))
    ]
    clustering, path_length = np.mean(values, axis=0)
    assert clustering == pytest.approx(p, rel=0.05)  # any triangle closes with probability p
    assert path_length == pytest.approx(fronczak_path_length(n, p * (n - 1)), rel=0.03)


def small_world(a: np.ndarray, count: int = 30) -> tuple[float, nulls.NullStatistics]:
    """The small-world index against degree-preserving nulls, with its null statistics."""
    rng = np.random.default_rng(1)
    nulls_ = [nulls.strength_preserving(a, rng) for _ in range(count)]
    c_null = [graph.average_clustering(x) for x in nulls_]
    l_null = [graph.characteristic_path_length(x)[0] for x in nulls_]
    c_mean, l_mean = np.mean(c_null), np.mean(l_null)
    index = graph.small_world_index(
        graph.average_clustering(a), graph.characteristic_path_length(a)[0], c_mean, l_mean
    )
    distribution = [
        graph.small_world_index(c, p, c_mean, l_mean) for c, p in zip(c_null, l_null, strict=True)
    ]
    return index, nulls.null_statistics(index, distribution)


def test_small_world_index_of_a_random_graph_is_about_one():
    index, stats = small_world(erdos_renyi(100, 0.06, np.random.default_rng(3)))
    assert index == pytest.approx(1.0, abs=0.1)
    assert abs(stats.z) < 3
    assert stats.mean == pytest.approx(1.0, abs=0.02)


def test_small_world_index_of_a_lattice_as_theory_gives():
    n, k = 100, 6
    p = k / (n - 1)
    index, stats = small_world(ring_lattice(n, k))
    exact = sum(math.ceil(min(m, n - m) / (k / 2)) for m in range(1, n)) / (n - 1)
    theory = (3 * (k - 2) / (4 * (k - 1)) / p) / (exact / fronczak_path_length(n, k))
    assert index == pytest.approx(theory, rel=0.2)
    assert stats.z > 10


def test_a_watts_strogatz_graph_is_a_small_world():
    a = nx.to_numpy_array(nx.watts_strogatz_graph(100, 6, 0.1, seed=3))
    index, stats = small_world(a)
    assert index > 3 and stats.z > 10
    assert graph.characteristic_path_length(a)[0] < 2 * fronczak_path_length(100, 6)


# --------------------------------------------------------------------------- edge cases


def test_communicability_is_the_exponential_series_of_the_normalised_matrix():
    a = random_weighted(12, 0.4, seed=8)
    a[3] = 0.0  # a node without out-going weight
    strength = a.sum(1)
    scale = np.where(strength > 0, 1 / np.sqrt(np.where(strength > 0, strength, 1)), 0.0)
    m = scale[:, None] * a * scale[None, :]
    series, term = np.eye(len(a)), np.eye(len(a))
    for k in range(1, 40):
        term = term @ m / k
        series = series + term
    np.testing.assert_allclose(graph.communicability(a), series, atol=1e-10)
    lengths = np.random.default_rng(9).uniform(1, 3, a.shape)
    expected = (a * lengths * series).sum()
    assert graph.communicability_wiring_cost(a, lengths) == pytest.approx(expected)


def test_small_world_index_is_undefined_without_clustering():
    assert graph.small_world_index(0.0, 2.0, 0.0, 2.0) is None
    assert graph.small_world_index(0.5, float("nan"), 0.1, 2.0) is None
    assert graph.small_world_index(0.5, 2.0, 0.25, 4.0) == pytest.approx(4.0)


def test_empty_and_bad_graphs():
    empty = np.zeros((4, 4))
    assert graph.average_clustering(empty) == 0.0
    assert graph.modularity(empty, [0, 0, 1, 1]) == 0.0
    assert graph.global_efficiency(empty) == 0.0
    path_length, reachable = graph.characteristic_path_length(empty)
    assert math.isnan(path_length) and reachable == 0.0
    np.testing.assert_array_equal(graph.louvain_communities(empty, seed=0), [0, 1, 2, 3])
    with pytest.raises(ValueError, match=">= 0"):
        graph.clustering(-np.ones((3, 3)))
    with pytest.raises(ValueError, match="square"):
        graph.path_lengths(np.ones((2, 3)))
    with pytest.raises(ValueError, match="symmetric"):
        graph.clustering(np.triu(np.ones((3, 3)), 1), directed=False)
    with pytest.raises(ValueError, match="method"):
        graph.louvain_communities(empty, seed=0, method="leiden")
    with pytest.raises(ValueError, match="in no community"):
        graph.community_labels([{0, 1}], 3)


def test_self_loops_are_ignored():
    a = random_weighted(10, 0.5, seed=11)
    looped = a + np.diag(np.full(10, 5.0))
    assert graph.average_clustering(looped) == pytest.approx(graph.average_clustering(a))
    labels = np.arange(10) % 2
    assert graph.modularity(looped, labels) == pytest.approx(graph.modularity(a, labels))
