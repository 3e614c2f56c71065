"""count_parameters: what a spatial layer learns, by kind."""

import torch
from torch import nn
from torch.nn.utils import parametrize

from spatial_layers import (
    HiddenPopulation,
    Leaky,
    NeuronPositions,
    ParameterCount,
    SpatialDelay,
    count_parameters,
)


def test_spatial_layer_reports_coordinates_not_delays():
    count = count_parameters(SpatialDelay(20, 7, max_delay=5, dim=3))
    assert isinstance(count, ParameterCount)
    assert count == ParameterCount(
        weights=20 * 7, coordinates=(20 + 7) * 3, free_delays=0, other=0, total=140 + 81
    )


def test_free_mode_reports_one_delay_per_synapse():
    count = count_parameters(SpatialDelay(20, 7, max_delay=5, delays="free", bias=True))
    assert count == ParameterCount(
        weights=140, coordinates=0, free_delays=140, other=7, total=140 + 140 + 7
    )


def test_no_delay_mode_is_a_linear_layer():
    layer = SpatialDelay(20, 7, max_delay=5, delays="none", bias=True)
    count = count_parameters(layer)
    assert count == ParameterCount(weights=140, coordinates=0, free_delays=0, other=7, total=147)
    assert count.total == sum(p.numel() for p in nn.Linear(20, 7).parameters())


def test_shared_positions_counted_once():
    pos_in, pos_hid, pos_out = NeuronPositions(10, 2), NeuronPositions(6, 2), NeuronPositions(3, 2)
    model = nn.Sequential(
        SpatialDelay(pos_in, pos_hid, max_delay=4),
        SpatialDelay(pos_hid, pos_out, max_delay=4),
    )
    count = count_parameters(model)
    assert count.weights == 10 * 6 + 6 * 3
    assert count.coordinates == (10 + 6 + 3) * 2
    # And the total is what torch itself counts (parameters() de-duplicates shared ones).
    assert count.total == sum(p.numel() for p in model.parameters())


def test_recurrent_population_counts_its_positions_once():
    pos_in, pos_hid = NeuronPositions(4, 3), NeuronPositions(5, 3)
    model = HiddenPopulation(
        SpatialDelay(pos_in, pos_hid, max_delay=3),
        Leaky(),
        recurrent=SpatialDelay(pos_hid, pos_hid, max_delay=3),
    )
    count = count_parameters(model)
    assert count.weights == 4 * 5 + 5 * 5
    assert count.coordinates == (4 + 5) * 3


def test_masked_synapses_excluded():
    layer = SpatialDelay(6, 4, max_delay=3, delays="free")
    layer.mask[:, :2] = False  # 8 of 24 synapses removed
    count = count_parameters(layer)
    assert count.weights == 16 and count.free_delays == 16
    assert count.total == 32


def test_other_parameters_and_frozen_ones():
    layer = SpatialDelay(6, 4, max_delay=3, dim=2)
    model = nn.Sequential(layer, nn.Linear(4, 2))
    layer.pre.coords.requires_grad_(False)
    count = count_parameters(model)
    assert count.coordinates == 4 * 2  # frozen input positions are not learned
    assert count.other == 4 * 2 + 2
    assert count.total == count.weights + count.coordinates + count.free_delays + count.other


class Absolute(nn.Module):
    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.abs()


def test_parametrized_weight_not_counted_twice():
    layer = SpatialDelay(6, 4, max_delay=3, delays="none")
    parametrize.register_parametrization(layer, "weight", Absolute())
    layer.mask[0, 0] = False
    count = count_parameters(layer)
    assert count == ParameterCount(weights=23, coordinates=0, free_delays=0, other=0, total=23)
