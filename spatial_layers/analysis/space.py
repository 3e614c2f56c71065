r"""Measures of space: where neurons sit against what they connect to and what they do.

Pure numpy functions of positions (N, D) in space units and of per-neuron values:
Pearson correlation (:func:`pearson`), spatial autocorrelation (:func:`moran_i` with
k-nearest-neighbour weights), a cross-validated ridge regression of positions on
input weights (:func:`ridge_cv_r2`), and the preferred target position of an input
channel with its alignment to an ordered input (:func:`preferred_positions`,
:func:`order_alignment`). Each returns a statistic; permutation nulls are built from
the same functions by the network-level code
(:mod:`spatial_layers.analysis.network`).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "knn_weights",
    "moran_i",
    "order_alignment",
    "pairwise_distances",
    "pearson",
    "preferred_positions",
    "ridge_cv_r2",
    "upper_pairs",
]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    r"""Pearson correlation :math:`r = \mathrm{cov}(x, y) / (\sigma_x \sigma_y)` of two
    equally long vectors; NaN when either is constant or has fewer than 2 values.

    Example:
        >>> pearson(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 7.0]))
        0.9933992677987828
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in size: {x.size} and {y.size}")
    if x.size < 2:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    norm = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / norm) if norm > 0 else float("nan")


def pairwise_distances(positions: np.ndarray) -> np.ndarray:
    """(N, N) Euclidean distances between the rows of (N, D) ``positions`` (space units)."""
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"positions must be (N, D), got shape {p.shape}")
    return np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))


def upper_pairs(matrix: np.ndarray) -> np.ndarray:
    """The entries above the diagonal of a square matrix (each unordered pair once)."""
    rows, cols = np.triu_indices(len(matrix), k=1)
    return np.asarray(matrix)[rows, cols]


def knn_weights(positions: np.ndarray, neighbours: int) -> np.ndarray:
    r"""Row-standardised k-nearest-neighbour spatial weights:
    :math:`w_{ij} = 1/k` for the ``neighbours`` nearest j of i (j != i; ties by index),
    else 0. Rows sum to 1, so :math:`S_0 = \sum_{ij} w_{ij} = N`.

    Returns:
        (N, N) weights.
    """
    distances = pairwise_distances(positions)
    n = len(distances)
    if not 1 <= neighbours <= n - 1:
        raise ValueError(f"neighbours must be in [1, N - 1 = {n - 1}], got {neighbours}")
    np.fill_diagonal(distances, np.inf)
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :neighbours]
    weights = np.zeros((n, n))
    np.put_along_axis(weights, nearest, 1.0 / neighbours, axis=1)
    return weights


def moran_i(values: np.ndarray, weights: np.ndarray) -> float:
    r"""Moran's I: spatial autocorrelation of per-neuron values (dimensionless).

    .. math:: I = \frac{N}{S_0}\,
        \frac{\sum_{ij} w_{ij} \langle z_i, z_j \rangle}{\sum_i \lVert z_i \rVert^2},
        \qquad z_i = x_i - \bar x, \quad S_0 = \sum_{ij} w_{ij}

    For scalar values this is the classic I (Moran 1950); vector values (one row per
    neuron) give the multivariate form, which for one-hot rows of a category (a
    preferred class) is the I of each class's indicator averaged with weights equal to
    the indicators' variances. About 1: neighbours share their value; about
    :math:`-1/(N-1)` (0 for large N): no spatial order; negative: neighbours differ.

    Args:
        values: (N,) or (N, K) values per neuron.
        weights: (N, N) spatial weights, e.g. :func:`knn_weights`.

    Returns:
        I; NaN when all values are equal.

    Example:
        >>> two_groups = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
        >>> moran_i(np.array([0, 0, 0, 1, 1, 1.0]), knn_weights(two_groups, 2))
        1.0
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    w = np.asarray(weights, dtype=np.float64)
    n = len(x)
    if w.shape != (n, n):
        raise ValueError(f"weights must be ({n}, {n}) for {n} values, got {w.shape}")
    z = x - x.mean(0)
    spread = (z * z).sum()
    s0 = w.sum()
    if spread <= 0 or s0 <= 0:
        return float("nan")
    return float(n / s0 * (w * (z @ z.T)).sum() / spread)


def ridge_cv_r2(
    features: np.ndarray,
    targets: np.ndarray,
    *,
    alpha: float = 1.0,
    folds: int = 5,
    rng: np.random.Generator,
) -> float:
    r"""Cross-validated :math:`R^2` of a ridge regression from ``features`` to ``targets``.

    The rows are split at random into ``folds`` folds; for each, a ridge regression
    with intercept (features and targets centred on the other folds' means)

    .. math:: B = (X^T X + \alpha I)^{-1} X^T Y

    predicts the held-out rows. The out-of-fold predictions :math:`\hat Y` of all rows
    then give

    .. math:: R^2 = 1 - \frac{\sum_{n,d} (Y_{nd} - \hat Y_{nd})^2}
        {\sum_{n,d} (Y_{nd} - \bar Y_d)^2}

    pooled over the target columns (so that for positions it does not depend on how
    the layout is rotated). 1: the targets are a linear function of the features;
    about 0 or below: no linear relation that generalises. Features are not
    standardised: ``alpha`` is in the features' units squared.

    Args:
        features: (N, P), e.g. each hidden neuron's input weights.
        targets: (N, D), e.g. the hidden neurons' positions.
        alpha: ridge penalty (>= 0).
        folds: k of the k-fold split (2 <= k <= N).
        rng: shuffles the rows before the split.

    Returns:
        :math:`R^2`; NaN when the targets do not vary.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    n = len(x)
    if x.ndim != 2 or len(y) != n:
        raise ValueError(
            f"features (N, P) and targets (N, D) must share N, got {x.shape}, {y.shape}"
        )
    if not 2 <= folds <= n:
        raise ValueError(f"folds must be in [2, N = {n}], got {folds}")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    predicted = np.empty_like(y)
    for held in np.array_split(rng.permutation(n), folds):
        train = np.ones(n, dtype=bool)
        train[held] = False
        x_mean, y_mean = x[train].mean(0), y[train].mean(0)
        xc, yc = x[train] - x_mean, y[train] - y_mean
        gram = xc.T @ xc + alpha * np.eye(x.shape[1])
        coefficients = np.linalg.lstsq(gram, xc.T @ yc, rcond=None)[0]
        predicted[held] = (x[held] - x_mean) @ coefficients + y_mean
    total = ((y - y.mean(0)) ** 2).sum()
    if total <= 0:
        return float("nan")
    return float(1.0 - ((y - predicted) ** 2).sum() / total)


def preferred_positions(weights: np.ndarray, positions: np.ndarray) -> np.ndarray:
    r"""Preferred target position of every input: the centre of its targets weighted by
    :math:`|w|` (as the neuron-position paper's "preferred position" of a channel).

    .. math:: \bar p_j = \frac{\sum_i |w_{ij}|\, p_i}{\sum_i |w_{ij}|}

    Args:
        weights: (C_out, C_in) weights from the inputs to their targets (a layer's
            ``weight`` layout).
        positions: (C_out, D) positions of the targets.

    Returns:
        (C_in, D) preferred positions (space units); NaN rows for inputs without weight.
    """
    w = np.abs(np.asarray(weights, dtype=np.float64))
    p = np.asarray(positions, dtype=np.float64)
    if w.ndim != 2 or p.ndim != 2 or len(p) != len(w):
        raise ValueError(
            f"weights (C_out, C_in) and positions (C_out, D) must share C_out, "
            f"got {w.shape}, {p.shape}"
        )
    total = w.sum(0)
    out = np.full((w.shape[1], p.shape[1]), np.nan)
    has = total > 0
    out[has] = (w[:, has].T @ p) / total[has, None]
    return out


def order_alignment(index: np.ndarray, positions: np.ndarray) -> float:
    r"""How well an input's order is laid out in space: the multiple correlation R of the
    input index with the positions (dimensionless, in [0, 1]).

    .. math:: R^2 = 1 - \frac{\sum_j (c_j - \hat c_j)^2}{\sum_j (c_j - \bar c)^2}

    where :math:`\hat c` is the least-squares fit :math:`c \approx a + b^T \bar p_j` of
    the index :math:`c_j` (e.g. a frequency channel's rank) on the (preferred)
    positions. It does not depend on how the layout is rotated or shifted; in 1-D it is
    :math:`|r|`. With few inputs it is large by chance: compare it with a permuted index.

    Args:
        index: (C,) the order of the inputs (e.g. ``arange(C)``).
        positions: (C, D) their (preferred) positions; rows with NaN are left out.

    Returns:
        R; NaN with fewer than D + 2 usable rows or a constant index.
    """
    c = np.asarray(index, dtype=np.float64).ravel()
    p = np.asarray(positions, dtype=np.float64)
    usable = np.isfinite(p).all(1)
    c, p = c[usable], p[usable]
    if len(c) < p.shape[1] + 2:
        return float("nan")
    design = np.column_stack([np.ones(len(c)), p])
    fit = design @ np.linalg.lstsq(design, c, rcond=None)[0]
    total = ((c - c.mean()) ** 2).sum()
    if total <= 0:
        return float("nan")
    r2 = max(0.0, 1.0 - ((c - fit) ** 2).sum() / total)
    return float(np.sqrt(r2))
