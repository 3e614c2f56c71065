"""Null networks keep what they promise (edges, degrees, strengths, blocks); null statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spatial_layers.analysis import nulls


def sparse_graph(n: int = 60, p: float = 0.1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0.0, 0.5, (n, n)) * (rng.random((n, n)) < p)
    np.fill_diagonal(a, 0.0)
    return a


def layered(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 6-20-3 feed-forward block graph (sparse first layer, dense second)."""
    rng = np.random.default_rng(seed)
    sizes = (6, 20, 3)
    blocks = np.repeat(np.arange(3), sizes)
    a = np.zeros((29, 29))
    a[:6, 6:26] = rng.uniform(0.1, 2.0, (6, 20)) * (rng.random((6, 20)) < 0.5)
    a[6:26, 26:] = rng.uniform(0.1, 2.0, (20, 3))
    return a, blocks


def block_pairs(a: np.ndarray, blocks: np.ndarray) -> set[tuple[int, int]]:
    src, dst = np.nonzero(a)
    return set(zip(blocks[src].tolist(), blocks[dst].tolist(), strict=True))


def test_weight_shuffle_keeps_the_edges_and_each_blocks_weights():
    a, blocks = layered()
    null = nulls.weight_shuffle(a, np.random.default_rng(1), blocks=blocks)
    np.testing.assert_array_equal(null > 0, a > 0)
    for rows, cols in ((slice(0, 6), slice(6, 26)), (slice(6, 26), slice(26, 29))):
        np.testing.assert_allclose(
            np.sort(null[rows, cols].ravel()), np.sort(a[rows, cols].ravel())
        )
    assert not np.allclose(null, a)


def test_strength_preserving_keeps_degrees_exactly_and_strengths_closely():
    a = sparse_graph()
    null = nulls.strength_preserving(a, np.random.default_rng(2))
    binary, null_binary = a > 0, null > 0
    np.testing.assert_array_equal(null_binary.sum(0), binary.sum(0))
    np.testing.assert_array_equal(null_binary.sum(1), binary.sum(1))
    assert not null_binary.diagonal().any()
    assert (null_binary & ~binary).sum() > 0.5 * binary.sum()  # really rewired
    np.testing.assert_allclose(np.sort(null[null > 0]), np.sort(a[a > 0]))
    shuffled = nulls.weight_shuffle(a, np.random.default_rng(2))
    for axis in (0, 1):
        kept = np.corrcoef(a.sum(axis), null.sum(axis))[0, 1]
        lost = np.corrcoef(a.sum(axis), shuffled.sum(axis))[0, 1]
        # Rubinov-Sporns keeps strengths approximately (about r = 0.93 here, one edge at a
        # time or in batches alike); shuffling the weights keeps them less.
        assert kept > 0.85 and kept > lost + 0.05


def test_strength_preserving_nulls_stay_inside_their_block_pairs():
    a, blocks = layered()
    null = nulls.strength_preserving(a, np.random.default_rng(3), blocks=blocks)
    assert block_pairs(null, blocks) == block_pairs(a, blocks)
    for axis in (0, 1):
        np.testing.assert_array_equal((null > 0).sum(axis), (a > 0).sum(axis))
    # The dense second layer cannot be rewired: its edges stay, its weights move.
    np.testing.assert_array_equal(null[6:26, 26:] > 0, a[6:26, 26:] > 0)


def test_rewiring_a_complete_edge_set_changes_nothing():
    src, dst = np.nonzero(np.ones((4, 4)) - np.eye(4))
    new_src, new_dst = nulls.rewire_directed((src, dst), np.random.default_rng(0))
    assert set(zip(new_src, new_dst, strict=True)) == set(zip(src, dst, strict=True))


def test_assign_weights_hands_out_the_same_weights():
    src, dst = np.array([0, 0, 1, 2]), np.array([1, 2, 2, 0])
    weights = np.array([1.0, 2.0, 3.0, 4.0])
    out = nulls.assign_weights(
        src, dst, weights, np.array([3.0, 3.0, 4.0]), np.array([4.0, 1.0, 5.0]),
        np.random.default_rng(0), steps=4,
    )  # fmt: skip
    np.testing.assert_allclose(np.sort(out), weights)


def test_nulls_are_reproducible_from_the_generator():
    a = sparse_graph(seed=4)
    for make in nulls.NULL_MODELS.values():
        first = make(a, np.random.default_rng(5))
        np.testing.assert_array_equal(first, make(a, np.random.default_rng(5)))


def test_null_statistics():
    stats = nulls.null_statistics(3.0, [0.0, 1.0, 2.0, None, float("nan")])
    assert (stats.mean, stats.sd, stats.z) == (1.0, 1.0, 2.0)
    assert stats.p_greater == pytest.approx(1 / 4) and stats.p_less == pytest.approx(1.0)
    assert stats.values == [0.0, 1.0, 2.0, None, None]
    flat = nulls.null_statistics(1.0, [1.0, 1.0])
    assert flat.sd == 0.0 and flat.z is None
    assert nulls.null_statistics(None, [1.0, 2.0]).z is None
    nothing = nulls.null_statistics(1.0, [None])
    assert nothing.mean is None and nothing.values == [None]
    assert math.isclose(nulls.null_statistics(0.0, [1.0, 3.0]).z, -2 / math.sqrt(2))


def test_blocks_must_label_every_node():
    with pytest.raises(ValueError, match="one label per node"):
        nulls.weight_shuffle(np.ones((3, 3)), np.random.default_rng(0), blocks=[0, 1])
