"""Tuning curves, preferred classes and signal correlations from recorded rates."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_layers.analysis import function


def test_class_rates_are_class_means():
    rng = np.random.default_rng(0)
    rates, labels = rng.random((90, 7)), rng.integers(0, 3, 90)
    tuning = function.class_rates(rates, labels, 4)
    for c in range(3):
        np.testing.assert_allclose(tuning[c], rates[labels == c].mean(0))
    assert np.isnan(tuning[3]).all()  # a class without samples
    with pytest.raises(ValueError, match="labels must lie"):
        function.class_rates(rates, labels + 3, 4)


def test_preferred_class_and_untuned_neurons():
    tuning = np.array([[0.0, 0.5, 0.2, 0.3], [0.0, 0.1, 0.2, 0.9], [np.nan] * 4])
    np.testing.assert_array_equal(function.tuned(tuning), [False, True, False, True])
    np.testing.assert_array_equal(function.preferred_class(tuning), [-1, 0, -1, 1])


def test_tuning_similarity_is_the_correlation_of_tuning_curves():
    rng = np.random.default_rng(1)
    tuning = rng.random((5, 6))
    tuning[:, 2] = 0.3  # untuned
    similarity = function.tuning_similarity(tuning)
    keep = [0, 1, 3, 4, 5]
    reference = np.corrcoef(tuning[:, keep].T)
    np.testing.assert_allclose(similarity[np.ix_(keep, keep)], reference)
    assert np.isnan(similarity[2]).all() and np.isnan(similarity[:, 2]).all()
    # Scaling a neuron's rates does not change its preferences.
    scaled = tuning.copy()
    scaled[:, 0] *= 10
    assert function.tuning_similarity(scaled)[0, 1] == pytest.approx(similarity[0, 1])
