"""Wiring cost, lengths, efficiency (against every pairing) and delay fractions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from spatial_layers import SpatialDelay
from spatial_layers.analysis import wiring
from spatial_layers.sparsity import wiring_cost as layer_wiring_cost


def test_cost_and_lengths_by_hand():
    w, ell = np.array([2.0, -1.0, 0.5]), np.array([1.0, 4.0, 2.0])
    assert wiring.wiring_cost(w, ell) == 7.0
    plain, weighted = wiring.mean_length(w, ell)
    assert plain == pytest.approx(7 / 3) and weighted == pytest.approx(7 / 3.5)


def test_cost_is_the_layers_wiring_cost_term():
    layer = SpatialDelay(6, 4, max_delay=5)
    with torch.no_grad():
        layer.mask[0, :3] = False
        lengths = torch.cdist(layer.post.coords, layer.pre.coords).double()
    mask = layer.mask.numpy()
    weights = layer.effective_weight().detach().double().numpy()[mask]
    expected = float(layer_wiring_cost(layer).detach())
    assert wiring.wiring_cost(weights, lengths.numpy()[mask]) == pytest.approx(expected, rel=1e-5)


def test_bounds_are_the_cheapest_and_dearest_pairings():
    rng = np.random.default_rng(0)
    w, ell = rng.lognormal(size=6), rng.uniform(0, 5, 6)
    costs = [wiring.wiring_cost(w, ell[list(p)]) for p in itertools.permutations(range(6))]
    low, high = wiring.wiring_bounds(w, ell)
    assert low == pytest.approx(min(costs)) and high == pytest.approx(max(costs))
    best = np.argsort(w)[::-1]  # strongest first onto the shortest
    assigned = np.empty(6)
    assigned[best] = np.sort(ell)
    assert wiring.wiring_efficiency(w, assigned) == pytest.approx(1.0)
    assigned[best] = np.sort(ell)[::-1]
    assert wiring.wiring_efficiency(w, assigned) == pytest.approx(0.0)
    # A random pairing lies between; on average near the middle for exchangeable pairings.
    mean = np.mean([(high - c) / (high - low) for c in costs])
    assert mean == pytest.approx(0.5, abs=0.1)


def test_efficiency_is_undefined_when_every_pairing_costs_the_same():
    assert np.isnan(wiring.wiring_efficiency(np.ones(4), np.arange(4.0)))


def test_delay_histogram_and_fractions():
    raw = np.array([-2.0, 0.2, 0.5, 3.6, 9.4, 9.6, 10.0, 14.0])
    histogram = wiring.delay_histogram(np.clip(raw, 0, 10), 10)
    assert histogram["steps"] == list(range(11))
    assert histogram["counts"] == [2, 1, 0, 0, 1, 0, 0, 0, 0, 1, 3]
    fractions = wiring.delay_fractions(raw, 10)
    assert fractions["zero"] == 2 / 8 and fractions["max"] == 3 / 8
    assert fractions["clamped_low"] == 1 / 8 and fractions["clamped_high"] == 1 / 8
    assert fractions["mean"] == pytest.approx(np.clip(raw, 0, 10).mean())
    assert np.isnan(wiring.delay_fractions(np.zeros(0), 10)["zero"])


def test_the_fraction_at_max_delay_is_undefined_when_max_delay_is_0():
    fractions = wiring.delay_fractions(np.zeros(4), 0)
    assert fractions["zero"] == 1.0 and fractions["clamped_high"] == 0.0
    assert np.isnan(fractions["max"]) and "max_delay is 0" in fractions["unavailable"]["max"]
    assert "unavailable" not in wiring.delay_fractions(np.zeros(4), 1)


def test_mismatched_or_non_finite_inputs_are_refused():
    with pytest.raises(ValueError, match="differ in size"):
        wiring.wiring_cost(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="finite"):
        wiring.wiring_cost(np.ones(2), np.array([1.0, np.nan]))
