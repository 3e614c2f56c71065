"""Wrong-typed constructor arguments are refused at construction, in one line naming them.

Each case was accepted before and read as something else: a truthy string as True (a
bias, a learnable decay, a late reset the config said it did not want), True as the
number 1, a float or a bool as a count.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from spatial_layers import AdaptiveLeaky, Leaky, NeuronPositions, SpatialDelay, SpatialSNN, Synaptic
from spatial_layers.arguments import (
    ArgumentTypeError,
    check_count,
    check_flag,
    check_number,
    check_positive,
    check_seed,
)
from spatial_layers.networks.snn import plain_value

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
    (lambda: Leaky([0.2, True], size=2), "beta must be a number or a \\[low, high\\] pair"),
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


def test_numpy_scalars_are_ints_and_numbers_and_come_back_as_python_ones():
    # a value read from an array or a config: it was refused by the library's checks
    # (np.int64 is not an int, np.float32 not a float) and accepted by the DataModules'
    count, number = check_count("size", np.int64(3), 1), check_positive("v", np.float32(0.5))
    assert (count, type(count), number, type(number)) == (3, int, 0.5, float)
    assert type(check_seed("seed", np.uint32(7))) is int
    positions = NeuronPositions(np.int64(3), dim=np.int64(2))
    assert positions().shape == (3, 2) and type(positions.num_neurons) is int
    assert SpatialDelay(np.int64(3), 2, max_delay=np.int64(4)).max_delay == 4
    assert float(Leaky(np.float32(0.5)).constant_values()[0, 0]) == 0.5
    # SpatialSNN uses its arguments as given and records them: a numpy scalar is named
    with pytest.raises(
        ArgumentTypeError, match=r"^max_delay holds np.int64\(3\) \(int64\), not a plain int"
    ):
        SpatialSNN(3, 2, [4], max_delay=np.int64(3))
    with pytest.raises(ValueError, match=r"^hidden_sizes holds np.int64\(4\) \(int64\)"):
        SpatialSNN(3, 2, [np.int64(4)])
    assert plain_value("beta", np.float64(0.5)) == 0.5  # a float subclass


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (
            lambda v: check_count("num_steps", v, 1),
            2.5,
            "num_steps must be an int >= 1, got 2.5 (float)",
        ),
        (lambda v: check_count("size", v, 1), True, "size must be an int >= 1, got True (bool)"),
        (lambda v: check_seed("seed", v), 4.0, "seed must be an int, got 4.0 (float)"),
        (lambda v: check_number("t_max", v), "40", "t_max must be a finite number, got '40' (str)"),
        (lambda v: check_positive("velocity", v), "1", "velocity must be a positive finite number"),
        (lambda v: check_flag("bias", v), "no", "bias must be True or False, got 'no' (str)"),
    ],
)
def test_a_wrong_type_is_a_type_error_and_a_value_error(check, value, message):
    # one policy for the library and the app: the app's checks raised TypeError, the
    # library's ValueError; callers catch either
    with pytest.raises(ArgumentTypeError, match=re.escape(message)) as error:
        check(value)
    assert isinstance(error.value, TypeError) and isinstance(error.value, ValueError)


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (lambda: check_count("num_steps", 0, 1), "num_steps must be an int >= 1, got 0 (int)"),
        (lambda: check_seed("seed", -1), "seed must lie in [0, 2**32 - 1] (a seed), got -1"),
        (lambda: check_number("t_max", float("nan")), "t_max must be a finite number, got nan"),
        (
            lambda: check_positive("end", -1.0, "steps"),
            "end must be a positive finite number (steps)",
        ),
    ],
)
def test_a_right_type_out_of_range_is_a_value_error_only(check, message):
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        check()
    assert not isinstance(error.value, TypeError)
