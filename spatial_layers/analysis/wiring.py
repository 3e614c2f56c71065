r"""Wiring measures of one layer's synapses: cost, length, efficiency, delays.

Pure numpy functions of arrays of the *active* synapses of a layer (its ``mask``):
their weights :math:`w` (the effective weights; magnitudes are used), their lengths
:math:`\ell` (space units: the distance between the two neurons with spatial delays,
``delay * velocity`` with free delays, as
:func:`spatial_layers.sparsity.wiring_distance` defines them) and their delays
(time steps). :func:`spatial_layers.analysis.network.layer_wiring` gathers them from
a :class:`~spatial_layers.SpatialDelay`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "delay_fractions",
    "delay_histogram",
    "mean_length",
    "wiring_bounds",
    "wiring_cost",
    "wiring_efficiency",
]


def _pair(weights: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = np.abs(np.asarray(weights, dtype=np.float64)).ravel()
    ell = np.asarray(lengths, dtype=np.float64).ravel()
    if w.shape != ell.shape:
        raise ValueError(f"weights and lengths differ in size: {w.size} and {ell.size}")
    if not (np.isfinite(w).all() and np.isfinite(ell).all()):
        raise ValueError("weights and lengths must be finite")
    return w, ell


def wiring_cost(weights: np.ndarray, lengths: np.ndarray) -> float:
    r"""Total wire, :math:`C = \sum_s |w_s|\, \ell_s` (weight times space units).

    The loss term of ``model.wiring_cost`` per layer
    (:func:`spatial_layers.sparsity.wiring_cost`).

    Example:
        >>> wiring_cost(np.array([1.0, -2.0]), np.array([3.0, 0.5]))
        4.0
    """
    w, ell = _pair(weights, lengths)
    return float((w * ell).sum())


def mean_length(weights: np.ndarray, lengths: np.ndarray) -> tuple[float, float]:
    r"""Mean synapse length, plain and weighted by :math:`|w|` (space units).

    .. math:: \bar\ell = \frac{1}{S}\sum_s \ell_s, \qquad
        \bar\ell_w = \frac{\sum_s |w_s| \ell_s}{\sum_s |w_s|}

    :math:`\bar\ell_w < \bar\ell`: the strong synapses are the short ones.

    Returns:
        ``(mean, weighted_mean)``; NaN for no synapses (weighted: also for all-zero weights).

    Example:
        >>> mean_length(np.array([3.0, 1.0]), np.array([1.0, 3.0]))
        (2.0, 1.5)
    """
    w, ell = _pair(weights, lengths)
    if ell.size == 0:
        return float("nan"), float("nan")
    total = w.sum()
    weighted = float((w * ell).sum() / total) if total > 0 else float("nan")
    return float(ell.mean()), weighted


def wiring_bounds(weights: np.ndarray, lengths: np.ndarray) -> tuple[float, float]:
    r"""The least and the largest :func:`wiring_cost` of any pairing of these weights with
    these lengths (the rearrangement inequality): the largest weights on the shortest
    synapses, and on the longest.

    .. math:: C_{min} = \sum_k |w|_{(k)}\, \ell_{(S+1-k)}, \qquad
        C_{max} = \sum_k |w|_{(k)}\, \ell_{(k)}

    with :math:`x_{(k)}` the k-th smallest.
    """
    w, ell = _pair(weights, lengths)
    w, ell = np.sort(w), np.sort(ell)
    return float((w * ell[::-1]).sum()), float((w * ell).sum())


def wiring_efficiency(weights: np.ndarray, lengths: np.ndarray) -> float:
    r"""Normalised wiring efficiency (as the neuron-position paper, arXiv 2511.01632), in [0, 1]:

    .. math:: \eta = \frac{C_{max} - C}{C_{max} - C_{min}}

    with :math:`C` the :func:`wiring_cost` and the bounds of :func:`wiring_bounds`:
    1 when the weights sit on the synapses as short as these lengths allow (the
    strongest on the shortest), 0 when on the longest, about 0.5 for a random pairing.
    The bounds ignore geometry (not every pairing is a layout). NaN when every pairing
    costs the same (equal weights or equal lengths).

    Example:
        >>> wiring_efficiency(np.array([3.0, 1.0]), np.array([1.0, 2.0]))
        1.0
    """
    low, high = wiring_bounds(weights, lengths)
    if high - low <= 1e-12 * max(abs(high), 1.0):
        return float("nan")
    return float((high - wiring_cost(weights, lengths)) / (high - low))


def delay_histogram(delays: np.ndarray, max_delay: int) -> dict[str, list[int]]:
    """Synapses per delay step: the delays rounded to the nearest integer step.

    Bins are centred on 0, 1, ..., ``max_delay`` (edges at half steps), as the
    ``round`` kernel applies the delays.

    Returns:
        ``{"steps": [0, ..., max_delay], "counts": [...]}``.

    Example:
        >>> delay_histogram(np.array([0.2, 0.6, 1.4, 2.0]), 2)
        {'steps': [0, 1, 2], 'counts': [1, 2, 1]}
    """
    d = np.asarray(delays, dtype=np.float64).ravel()
    edges = np.arange(max_delay + 2, dtype=np.float64) - 0.5
    counts, _ = np.histogram(np.clip(d, 0.0, float(max_delay)), bins=edges)
    return {"steps": list(range(max_delay + 1)), "counts": [int(c) for c in counts]}


def delay_fractions(raw_delays: np.ndarray, max_delay: int) -> dict[str, Any]:
    r"""Where the delays sit against the ends of the range [0, ``max_delay``] steps.

    Args:
        raw_delays: the delays before the layer clamps them (distance / velocity with
            spatial delays; the free delay parameters), in steps.
        max_delay: the layer's largest delay.

    Returns:
        ``zero``: fraction with delay < 0.5 (applied as 0 steps by the ``round`` kernel);
        ``max``: fraction with delay >= ``max_delay - 0.5`` (applied as ``max_delay``);
        ``clamped_low`` / ``clamped_high``: fractions beyond the range (raw < 0, raw >
        ``max_delay``), clamped by the layer: saturated, they get no delay gradient;
        ``mean``: the mean clamped delay in steps. NaN fractions for no synapses.
        With ``max_delay`` 0 the range is the single step 0: ``zero`` is 1 (every synapse
        acts at once) and ``max``, which would say the same delays saturate the range, is
        NaN, undefined, with the reason under ``unavailable["max"]``.

    Example:
        >>> delay_fractions(np.array([-1.0, 0.3, 2.0, 9.8, 12.0]), 10)["clamped_high"]
        0.2
    """
    raw = np.asarray(raw_delays, dtype=np.float64).ravel()
    if raw.size == 0:
        nan = float("nan")
        return dict.fromkeys(("zero", "max", "clamped_low", "clamped_high", "mean"), nan)
    clamped = np.clip(raw, 0.0, float(max_delay))
    fractions: dict[str, Any] = {
        "zero": float((clamped < 0.5).mean()),
        "max": float((clamped >= max_delay - 0.5).mean()),
        "clamped_low": float((raw < 0).mean()),
        "clamped_high": float((raw > max_delay).mean()),
        "mean": float(clamped.mean()),
    }
    if max_delay <= 0:  # 0 is both ends of the range: "at the maximum" is not saturation
        fractions["max"] = float("nan")
        fractions["unavailable"] = {
            "max": "undefined: max_delay is 0, every delay is 0 steps and none can saturate"
        }
    return fractions
