r"""Measures of function from recorded activity: tuning to classes and its similarity.

The activity is each hidden neuron's firing rate per sample, :math:`r_{n i}` (spikes
per time step, averaged over the sample's steps), with the sample's class
:math:`y_n`. :func:`class_rates` gives the tuning curves (class-conditional mean
rates), :func:`preferred_class` each neuron's preferred class, and
:func:`tuning_similarity` the signal correlation between the tuning curves of every
pair of neurons. Silent neurons and neurons with the same rate for every class have
no preference; functions say how they treat them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["class_rates", "preferred_class", "tuned", "tuning_similarity"]


def class_rates(rates: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    r"""Tuning curves: the mean rate of every neuron over the samples of each class.

    .. math:: R_{ci} = \frac{1}{|\{n: y_n = c\}|} \sum_{n: y_n = c} r_{ni}

    Args:
        rates: (S, N) rate of every neuron in every sample (spikes per step).
        labels: (S,) class of every sample, in [0, num_classes).
        num_classes: K.

    Returns:
        (K, N) class-conditional mean rates (spikes per step); NaN rows for classes
        without samples.

    Example:
        >>> class_rates(np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]]), np.array([0, 0, 1]), 2)
        array([[2., 0.],
               [0., 2.]])
    """
    r = np.asarray(rates, dtype=np.float64)
    y = np.asarray(labels)
    if r.ndim != 2 or y.shape != (len(r),):
        raise ValueError(f"rates (S, N) and labels (S,) must share S, got {r.shape}, {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got {y.min()}..{y.max()}")
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    sums = np.zeros((num_classes, r.shape[1]))
    np.add.at(sums, y, r)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def tuned(tuning: np.ndarray) -> np.ndarray:
    """(N,) bool: the neurons whose (K, N) tuning curve varies over the classes (neither
    silent nor equally active for every class), ignoring classes without samples."""
    t = np.asarray(tuning, dtype=np.float64)
    t = t[np.isfinite(t).all(1)]
    if len(t) == 0:
        return np.zeros(np.shape(tuning)[1], dtype=bool)
    return t.max(0) > t.min(0)


def preferred_class(tuning: np.ndarray) -> np.ndarray:
    """(N,) the class with the highest mean rate of every neuron, -1 for untuned ones
    (:func:`tuned`); ties between the top classes go to the lowest.

    Example:
        >>> preferred_class(np.array([[0.1, 0.0, 0.4], [0.3, 0.0, 0.2]]))
        array([ 1, -1,  0])
    """
    t = np.asarray(tuning, dtype=np.float64)
    filled = np.where(np.isfinite(t), t, -np.inf)
    return np.where(tuned(t), filled.argmax(0), -1)


def tuning_similarity(tuning: np.ndarray) -> np.ndarray:
    r"""Signal correlation: the Pearson correlation of every two neurons' tuning curves
    across the classes,

    .. math:: \rho_{ij} = \frac{\sum_c (R_{ci} - \bar R_i)(R_{cj} - \bar R_j)}
        {\sqrt{\sum_c (R_{ci} - \bar R_i)^2 \sum_c (R_{cj} - \bar R_j)^2}}

    1: same preferences (whatever the overall rate), -1: opposite ones. Classes without
    samples are left out.

    Args:
        tuning: (K, N) tuning curves (:func:`class_rates`).

    Returns:
        (N, N) similarities; NaN in the rows and columns of untuned neurons.
    """
    t = np.asarray(tuning, dtype=np.float64)
    t = t[np.isfinite(t).all(1)]
    centred = t - t.mean(0)
    norm = np.sqrt((centred * centred).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = centred / norm
    unit[:, norm <= 0] = np.nan
    return unit.T @ unit
