"""The loihi2 profile on a SpatialSNN: what it refuses, its state, its formats."""

from __future__ import annotations

import pytest
import torch

from spatial_layers.hardware.loihi2.profile import network_format
from tests.helpers.hardware import small_net


@pytest.mark.parametrize(
    ("arguments", "fix"),
    [
        ({"max_delay": 63}, "max_delay <= 62"),
        ({"bias": True}, "bias=False"),
        ({"batch_norm": True}, "batch_norm=False"),
        ({"dropout": 0.2}, "dropout=0"),
        ({"recurrent": True}, "recurrent=False"),
        ({"beta": 1e-4}, "beta >= 1/4096"),
    ],
)
def test_what_the_profile_cannot_run_is_refused_with_the_fix(arguments, fix):
    net = small_net(**arguments)
    with pytest.raises(ValueError, match="does not fit the loihi2 profile") as error:
        net.hardware_profile = "loihi2"
    assert fix in str(error.value)
    assert net.hardware_profile is None


def test_the_delay_limit_is_62_steps():
    small_net(max_delay=62).hardware_profile = "loihi2"  # the largest that fits
    with pytest.raises(ValueError, match="must be one of"):
        small_net().hardware_profile = "loihi3"


def test_profile_configures_the_layers_and_sends_inputs_as_graded_payloads():
    net = small_net()
    net.hardware_profile = "loihi2"
    for layer in net.delay_layers():
        assert (layer.kernel_kind, layer.weight_bits, layer.weight_scale) == (
            "round",
            8,
            "power_of_two",
        )
    for value in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"amplitudes in \[0, 1\]"):
            net.run(torch.full((10, 2, 5), value))
    with pytest.raises(ValueError, match="100 NaN"):  # refused by the network, before
        net.run(torch.full((10, 2, 5), float("nan")))
    # amplitudes within one payload step (1/32) of each other give the same numbers
    x = torch.rand(30, 4, 5, generator=torch.Generator().manual_seed(0))
    x = x * (x > 0.7)
    payloads = torch.round(x * 32) / 32
    assert torch.equal(net.run(x).membrane, net.run(payloads).membrane)
    nudged = (payloads + 0.4 / 32 * (payloads > 0)).clamp(max=1)
    assert torch.equal(net.run(nudged).membrane, net.run(payloads).membrane)
    coarser = torch.round(x * 8) / 8
    assert not torch.equal(net.run(coarser).membrane, net.run(payloads).membrane)


def test_profile_and_layer_settings_travel_in_the_state_dict():
    net = small_net()
    net.hardware_profile = "loihi2"
    x = (torch.rand(30, 4, 5, generator=torch.Generator().manual_seed(1)) < 0.2).float()
    state = net.state_dict()
    assert state["_extra_state"]["hardware_profile"] == "loihi2"
    fresh = small_net()
    fresh.load_state_dict(state)
    assert fresh.hardware_profile == "loihi2"
    assert fresh.layers[0].weight_scale == "power_of_two"
    assert torch.equal(fresh.run(x).membrane, net.run(x).membrane)
    float_run = small_net().run(x).membrane
    assert not torch.equal(float_run, net.run(x).membrane)  # the profile computes otherwise


def test_an_older_state_without_the_new_settings_loads_as_float():
    net = small_net()
    state = net.state_dict()
    del state["_extra_state"]["hardware_profile"]
    del state["hidden.0.synapses._extra_state"]["weight_scale"]
    fresh = small_net()
    fresh.load_state_dict(state)
    assert fresh.hardware_profile is None and fresh.layers[0].weight_scale == "max"


def test_formats_follow_the_weights():
    net = small_net()
    net.hardware_profile = "loihi2"
    formats = network_format(net)
    first = formats.layers[0]
    bits = formats.populations[0].bits
    # the input layer's payloads carry 5 fraction bits: weight_exp = s + f - 6 - 5
    assert first.payload_bits == 5 and first.grid_exponent == first.scale_exponent - 5
    assert first.weight_exponent == first.scale_exponent + bits - 6 - 5
    second = formats.layers[1]
    assert second.weight_exponent == second.scale_exponent + formats.populations[1].bits - 6
    assert formats.populations[0].threshold == 2 ** (formats.populations[0].bits - 6)
    assert formats.populations[-1].threshold is None  # the readout does not spike
    with torch.no_grad():
        net.layers[0].weight.mul_(4)
    assert network_format(net).layers[0].scale_exponent == first.scale_exponent + 2
