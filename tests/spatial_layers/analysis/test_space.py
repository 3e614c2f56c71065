"""Space measures with known answers: Moran's I of tuning laid out by position (about 1) and
shuffled (about 0), ridge R^2 of positions that are a linear function of input weights
(about 1), preferred positions and the alignment of an ordered input."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_layers.analysis import space


def grid(side: int) -> np.ndarray:
    xs, ys = np.meshgrid(np.arange(side, dtype=float), np.arange(side, dtype=float))
    return np.column_stack([xs.ravel(), ys.ravel()])


def naive_moran(x: np.ndarray, w: np.ndarray) -> float:
    """Moran's I of a scalar, by the textbook double sum."""
    n, z = len(x), x - x.mean()
    top = sum(w[i, j] * z[i] * z[j] for i in range(n) for j in range(n))
    return n / w.sum() * top / (z * z).sum()


def test_pearson_equals_numpy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert space.pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert np.isnan(space.pearson(np.ones(5), y[:5]))


def test_knn_weights_are_row_standardised_nearest_neighbours():
    positions = np.array([[0.0], [1.0], [3.0], [7.0]])
    w = space.knn_weights(positions, 2)
    np.testing.assert_allclose(w.sum(1), 1.0)
    np.testing.assert_array_equal(w > 0, [[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 0], [0, 1, 1, 0]])
    with pytest.raises(ValueError, match="neighbours"):
        space.knn_weights(positions, 4)


def test_scalar_moran_i_equals_the_textbook_sum():
    rng = np.random.default_rng(1)
    positions = rng.uniform(0, 10, (30, 2))
    x = positions[:, 0] + rng.normal(scale=2.0, size=30)
    w = space.knn_weights(positions, 4)
    assert space.moran_i(x, w) == pytest.approx(naive_moran(x, w))


def test_moran_i_of_classes_laid_out_by_position_is_near_one_and_shuffled_near_zero():
    positions = grid(15)  # 225 neurons
    preferred = np.digitize(positions[:, 0], [5, 10])  # class by third of the x axis
    one_hot = np.eye(3)[preferred]
    w = space.knn_weights(positions, 5)
    assert space.moran_i(one_hot, w) > 0.85
    shuffled = [
        space.moran_i(one_hot[np.random.default_rng(s).permutation(225)], w) for s in range(20)
    ]
    assert np.mean(shuffled) == pytest.approx(-1 / 224, abs=0.02)
    assert max(abs(v) for v in shuffled) < 0.15


def test_multivariate_moran_i_of_a_one_hot_is_the_variance_weighted_class_average():
    rng = np.random.default_rng(2)
    positions = rng.uniform(0, 5, (40, 2))
    one_hot = np.eye(3)[rng.integers(0, 3, 40)]
    w = space.knn_weights(positions, 3)
    per_class = [naive_moran(one_hot[:, c], w) for c in range(3)]
    variances = one_hot.var(0)
    expected = (np.array(per_class) * variances).sum() / variances.sum()
    assert space.moran_i(one_hot, w) == pytest.approx(expected)


def naive_ridge_cv(x, y, alpha, folds, rng) -> float:
    """k-fold ridge with intercept by the normal equations, one fold at a time."""
    order = rng.permutation(len(x))
    predicted = np.zeros_like(y)
    for held in np.array_split(order, folds):
        train = np.setdiff1d(np.arange(len(x)), held)
        design = np.column_stack([np.ones(len(train)), x[train] - x[train].mean(0)])
        penalty = alpha * np.diag([0.0] + [1.0] * x.shape[1])
        beta = np.linalg.solve(design.T @ design + penalty, design.T @ y[train])
        test = np.column_stack([np.ones(len(held)), x[held] - x[train].mean(0)])
        predicted[held] = test @ beta
    return 1 - ((y - predicted) ** 2).sum() / ((y - y.mean(0)) ** 2).sum()


def test_ridge_r2_of_positions_that_are_linear_in_the_input_weights_is_near_one():
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(128, 5))  # each hidden neuron's input weights
    positions = weights @ rng.normal(size=(5, 2)) + 0.01 * rng.normal(size=(128, 2))
    r2 = space.ridge_cv_r2(weights, positions, alpha=1.0, folds=5, rng=np.random.default_rng(0))
    assert r2 > 0.99
    expected = naive_ridge_cv(weights, positions, 1.0, 5, np.random.default_rng(0))
    assert r2 == pytest.approx(expected)
    unrelated = rng.normal(size=(128, 2))
    r2_unrelated = space.ridge_cv_r2(weights, unrelated, folds=5, rng=np.random.default_rng(0))
    assert r2_unrelated < 0.05


def test_ridge_r2_does_not_depend_on_how_the_layout_is_rotated():
    rng = np.random.default_rng(4)
    weights = rng.normal(size=(60, 4))
    positions = weights[:, :2] + rng.normal(size=(60, 2))
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    args = {"folds": 4}
    plain = space.ridge_cv_r2(weights, positions, rng=np.random.default_rng(1), **args)
    rotated = space.ridge_cv_r2(
        weights, positions @ rotation + 5.0, rng=np.random.default_rng(1), **args
    )
    assert plain == pytest.approx(rotated)


def test_preferred_positions_are_weight_centres():
    weights = np.array([[1.0, 0.0], [-3.0, 0.0], [0.0, 0.0]])  # (targets, inputs)
    positions = np.array([[0.0, 0.0], [4.0, 8.0], [1.0, 1.0]])
    preferred = space.preferred_positions(weights, positions)
    np.testing.assert_allclose(preferred[0], [3.0, 6.0])
    assert np.isnan(preferred[1]).all()


def test_order_alignment():
    index = np.arange(50.0)
    rng = np.random.default_rng(5)
    line = np.column_stack([index * 0.3, np.zeros(50)]) + 0.01 * rng.normal(size=(50, 2))
    assert space.order_alignment(index, line) > 0.999
    scattered = rng.normal(size=(50, 1))
    assert space.order_alignment(index, scattered) == pytest.approx(
        abs(space.pearson(index, scattered[:, 0]))
    )
    angle = 1.1
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    noisy = line + rng.normal(size=(50, 2))
    assert space.order_alignment(index, noisy) == pytest.approx(
        space.order_alignment(index, noisy @ rotation - 3.0)
    )
    assert np.isnan(space.order_alignment(index[:3], line[:3]))  # D + 2 = 4 rows needed
