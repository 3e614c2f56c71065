"""Wrong-typed constructor arguments are refused at construction, in one line naming them.

Each case was accepted before and read as something else: a truthy string as True (a
bias, a learnable decay, a late reset the config said it did not want), True as the
number 1, a float or a bool as a count.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spatial_layers import AdaptiveLeaky, Leaky, NeuronPositions, SpatialDelay, SpatialSNN, Synaptic
from spatial_layers.arguments import check_count, check_flag, check_positive

CASES = [
    (lambda: SpatialDelay(3, 2, 4, bias="no"), "bias must be True or False, got 'no'"),
    (lambda: SpatialDelay(3, 2, 4, init_hidden="false"), "init_hidden must be True or False"),
    (lambda: SpatialDelay(3, 2, 4, batch_first=1), "batch_first must be True or False, got 1"),
    (lambda: SpatialDelay(3, 2, 4, check_finite="no"), "check_finite must be True or False"),
    (lambda: SpatialDelay(3, 2, 4, velocity=True), "velocity must be a positive finite"),
    (lambda: SpatialDelay(3, 2, 4, velocity="1"), "velocity must be a positive finite"),
    (lambda: SpatialDelay(3, 2, 4, sigma=True), "sigma must be a positive finite number"),
    (lambda: SpatialDelay(3, 2, 4, dim=True), "dim must be an int >= 1"),
    (lambda: SpatialDelay(3, 2, 4, dim=2.0), "dim must be an int >= 1"),
    (lambda: NeuronPositions(3.0), "num_neurons must be an int >= 1, got 3.0"),
    (lambda: NeuronPositions(3, scale=True), "scale must be a positive finite"),
    (lambda: Leaky(0.5, reset_delay="false"), "reset_delay must be True or False, got 'false'"),
    (lambda: Leaky(0.5, size=3, learn_beta="false"), "learn_beta must be True or False"),
    (lambda: Leaky(0.5, init_hidden="no"), "init_hidden must be True or False"),
    (lambda: Leaky(True), "beta must be a number, a \\[low, high\\] pair or a \\(C,\\) tensor"),
    (lambda: Leaky("0.5"), "beta must be a number, a \\[low, high\\] pair"),
    (lambda: Leaky(np.float32(0.5)), "beta must be a number"),
    (lambda: Leaky(0.5, threshold=True), "threshold must be a positive finite"),
    (lambda: Leaky(0.5, alpha=float("inf")), "surrogate_alpha must be a positive finite"),
    (lambda: Synaptic(0.5, 0.5, size=2, learn_alpha="yes"), "learn_alpha must be True or False"),
    (lambda: AdaptiveLeaky(3, learn_adaptation="no"), "learn_adaptation must be True or False"),
    (lambda: AdaptiveLeaky(3, scale=True), "scale must be a positive finite"),
    (lambda: SpatialSNN(3, 2, [4], recurrent="false"), "recurrent must be True or False"),
    (lambda: SpatialSNN(3, 2, [4], batch_norm="no"), "batch_norm must be True or False"),
    (lambda: SpatialSNN(3, 2, [4], spiking_output=0), "spiking_output must be True or False"),
    (lambda: SpatialSNN(3, 2, 4), "hidden_sizes must be a non-empty list of ints >= 1, got 4"),
]


@pytest.mark.parametrize(("build", "message"), CASES)
def test_a_wrong_typed_argument_is_refused_in_one_line_naming_it(build, message):
    with pytest.raises(ValueError, match=message) as error:
        build()
    assert "\n" not in str(error.value)


def test_the_sigma_setter_refuses_a_bool_and_takes_numbers():
    layer = SpatialDelay(3, 2, 4)
    with pytest.raises(
        ValueError, match="sigma must be a positive finite number \\(steps\\), got True"
    ):
        layer.sigma = True
    layer.sigma = 2  # an int number of steps
    assert layer.sigma == 2.0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        # weights of 10**12 synapses (the check before this one)
        (lambda: SpatialDelay(10**6, 10**6, 4), r"SpatialDelay\(1000000 -> 1000000\) needs"),
        (lambda: NeuronPositions(10**11), r"NeuronPositions\(100000000000, dim=2\) needs"),
        (lambda: NeuronPositions(3, dim=10**12), r"for its 3000000000000 coordinates"),
        (lambda: Leaky(0.5, size=10**12), r"Leaky\(size=1000000000000\) needs .* constants"),
        (lambda: SpatialSNN(3, 2, [10**11]), r"NeuronPositions\(100000000000, dim=2\) needs"),
    ],
)
def test_an_absurd_size_is_a_memory_error_naming_it_at_construction(build, message):
    with pytest.raises(MemoryError, match=message) as error:
        build()
    assert "\n" not in str(error.value) and "GiB" in str(error.value)


def test_the_checks_pass_right_values_through():
    assert check_flag("bias", True) is True
    assert check_count("size", 3, 1) == 3
    assert check_positive("velocity", np.float64(2.0)) == 2.0
    assert SpatialDelay(3, 2, 4, velocity=2).velocity == 2.0
    assert Leaky(np.float64(0.5))(torch.ones(2, 1, 1)).shape == (2, 1, 1)
