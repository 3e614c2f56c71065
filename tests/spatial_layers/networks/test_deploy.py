"""fold_batch_norm against torch's BatchNorm1d; k-bit weights against exact references;
deployment_network leaves the original alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spatial_layers import SpatialDelay
from spatial_layers.networks import SpatialSNN
from spatial_layers.networks.deploy import (
    delayed_connections,
    deployment_network,
    fold_batch_norm,
    population_names,
)
from spatial_layers.networks.norm_leaky import TimeBatchNorm
from spatial_layers.quantization import quantized_weight
from tests.helpers.export import make_net, rounded, spike_input
from tests.helpers.probes import differing_keys, state_copy


def norm_with_statistics(channels: int, *, affine: bool = True, seed: int = 0) -> TimeBatchNorm:
    generator = torch.Generator().manual_seed(seed)
    norm = TimeBatchNorm(channels, affine=affine)
    with torch.no_grad():
        norm.running_mean.uniform_(-1, 1, generator=generator)
        norm.running_var.uniform_(0.2, 3, generator=generator)
        if affine:
            norm.weight.uniform_(-1.5, 1.5, generator=generator)
            norm.bias.uniform_(-1, 1, generator=generator)
    return norm.eval()


@pytest.mark.parametrize(("bias", "affine"), [(True, True), (False, True), (False, False)])
def test_folded_layer_equals_layer_then_batch_norm(bias, affine):
    torch.manual_seed(0)
    layer = SpatialDelay(6, 5, max_delay=3, kernel="round", bias=bias)
    norm = norm_with_statistics(5, affine=affine)
    x = torch.rand(9, 4, 6)
    expected = norm(layer(x))
    weight, shift = fold_batch_norm(layer.effective_weight(), layer.bias, norm)
    folded = SpatialDelay(layer.pre, layer.post, max_delay=3, kernel="round", bias=True)
    with torch.no_grad():
        folded.weight.copy_(weight)
        folded.bias.copy_(shift)
    torch.testing.assert_close(folded(x), expected, rtol=1e-5, atol=1e-5)


def test_fold_needs_running_statistics():
    norm = nn.BatchNorm1d(3, track_running_stats=False)
    with pytest.raises(ValueError, match="running statistics"):
        fold_batch_norm(torch.ones(3, 2), None, norm)
    with pytest.raises(ValueError, match="3 channels"):
        fold_batch_norm(torch.ones(4, 2), None, nn.BatchNorm1d(3))


def test_deployed_copy_is_rounded_folded_and_leaves_the_original_alone():
    net = make_net("batch_norm").train()
    state = state_copy(net)
    deployed, scales = deployment_network(net)
    assert scales == {} and not deployed.training
    assert all(block.norm is None for block in deployed.hidden)
    assert all(layer.kernel_kind == "round" for layer in deployed.delay_layers())
    assert net.training and all(
        isinstance(norm, TimeBatchNorm) for norm in [block.norm for block in net.hidden]
    )
    assert not differing_keys(net.state_dict(), state)
    x = spike_input()
    torch.testing.assert_close(deployed(x), rounded(net.eval())(x), rtol=0, atol=1e-6)


def test_negative_batch_norm_gain_drops_dale_signs_only_where_it_must():
    net = make_net("masked_dale")
    net.hidden[0].norm = norm_with_statistics(7)  # some negative gains
    net.hidden[1].norm = norm_with_statistics(6)
    with torch.no_grad():
        net.hidden[1].norm.weight.abs_()
    deployed, _ = deployment_network(net)
    assert deployed.layers[0].sign is None
    assert torch.equal(deployed.layers[1].sign, net.layers[1].sign)
    for layer in deployed.delay_layers():
        if layer.sign is not None:
            assert bool((layer.effective_weight() * layer.sign >= 0).all())


def test_names_of_populations_and_connections():
    net = make_net("recurrent")
    assert population_names(net) == ["input", "hidden_0", "hidden_1", "readout"]
    found = [(c.name, c.source, c.target, c.recurrent) for c in delayed_connections(net)]
    assert found == [
        ("layers_0", 0, 1, False),
        ("layers_1", 1, 2, False),
        ("layers_2", 2, 3, False),
        ("recurrent_layers_0", 1, 1, True),
        ("recurrent_layers_1", 2, 2, True),
    ]


@pytest.mark.parametrize("case", ["spatial", "masked_dale"])
def test_a_network_trained_with_k_bit_weights_exports_unchanged(case):
    net = rounded(make_net(case))
    for layer in net.delay_layers():
        layer.weight_bits = 6  # as RoundDelays(weight_bits=6) leaves a trained network
    deployed, scales = deployment_network(net, weight_bits=6)
    assert all(layer.weight_bits is None for layer in deployed.delay_layers())
    x = spike_input()
    assert torch.equal(deployed.run(x).hidden_spikes[0], net.run(x).hidden_spikes[0])
    torch.testing.assert_close(deployed(x), net(x), rtol=0, atol=1e-6)
    assert set(scales) == {c.name for c in delayed_connections(net)}


# ----------------------------------------------------------------------------- k-bit weights


def deployed_weight(weight: torch.Tensor, bits) -> tuple[torch.Tensor, float]:
    """The first layer's weights and scale when a network whose first layer holds
    ``weight`` (C_out, C_in) is deployed with ``bits``-bit weights."""
    c_out, c_in = weight.shape
    net = SpatialSNN(c_in, 3, [c_out], delays="none")
    with torch.no_grad():
        net.layers[0].weight.copy_(weight)
    deployed, scales = deployment_network(net, weight_bits=bits)
    return deployed.layers[0].weight.detach(), scales["layers_0"]


def test_eight_bit_weights():
    weight = torch.randn(40, 30, generator=torch.Generator().manual_seed(0)) * 0.3
    weight[0, :5] = 0.0
    quantized, scale = deployed_weight(weight, 8)
    assert scale == pytest.approx(weight.abs().max().item() / 127, rel=1e-12)
    assert quantized.dtype == weight.dtype and quantized.shape == weight.shape
    assert quantized.unique().numel() <= 255
    assert (quantized - weight).abs().max().item() <= scale / 2 * (1 + 1e-6)
    codes = quantized.double() / scale
    torch.testing.assert_close(codes, codes.round(), rtol=0, atol=1e-4)
    assert codes.abs().max().round().item() == 127
    assert bool((quantized * weight >= 0).all()) and not quantized[0, :5].any()


def test_round_half_to_even_and_small_widths():
    weight = torch.tensor([[3.0, 0.5, 1.5, -0.5, 2.5, -2.5]])  # scale 1 with 3 bits (levels +-3)
    quantized, scale = deployed_weight(weight, 3)
    assert scale == 1.0
    assert quantized[0].tolist() == np.round(weight[0].numpy()).tolist() == [3, 0, 2, -0, 2, -2]
    quantized, scale = deployed_weight(torch.tensor([[0.2, -0.7, 0.36]]), 2)  # levels {-1, 0, 1}
    assert quantized[0].tolist() == pytest.approx([0.0, -0.7, 0.7])


def test_all_zero_and_invalid_arguments():
    quantized, scale = deployed_weight(torch.zeros(3, 4), 8)
    assert scale == 1.0 and not quantized.any()
    for bits in (1, 0, -3, 2.5, True):
        with pytest.raises(ValueError, match="bits must be an int >= 2"):
            deployed_weight(torch.ones(1, 2), bits)
    with pytest.raises(ValueError, match="bits must be an int >= 2"):
        quantized_weight(torch.ones(2), None)  # (deployment_network reads None as float weights)
    with pytest.raises(ValueError, match="layers_0: its weights hold NaN or Inf"):
        deployed_weight(torch.tensor([[1.0, float("nan")]]), 8)
