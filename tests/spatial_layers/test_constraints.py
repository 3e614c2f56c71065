"""Dale's signs hold in the applied weights, and a saved sign other than +1/-1 is refused."""

from __future__ import annotations

import pytest
import torch

from spatial_layers import SpatialDelay
from spatial_layers.constraints import check_signs
from spatial_layers.sparsity import assign_dale_signs


def dale_layer() -> SpatialDelay:
    layer = SpatialDelay(6, 4, max_delay=4, delays="free")
    assign_dale_signs(layer, 0.5, torch.Generator().manual_seed(0))
    return layer


@pytest.mark.parametrize("bits", [None, 3])
def test_a_manual_weight_edit_keeps_every_applied_sign(bits):
    layer = dale_layer()
    layer.weight_bits = bits
    with torch.no_grad():
        layer.weight.copy_(torch.randn(4, 6, generator=torch.Generator().manual_seed(1)))
    assert (layer.effective_weight() * layer.sign >= 0).all()


@pytest.mark.parametrize(("bad", "shown"), [(2.0, "2.0"), (0.0, "0.0"), (float("nan"), "nan")])
def test_a_state_with_a_sign_other_than_plus_or_minus_one_is_refused(bad, shown):
    # 2 doubled neuron 1's weights and 0 removed them, silently; NaN showed only as NaN.
    state = dale_layer().state_dict()
    state["sign"] = state["sign"].clone()
    state["sign"][1] = bad
    with pytest.raises(ValueError, match=rf"sign must hold \+1 or -1 .* got {shown} at \[1\]"):
        SpatialDelay(6, 4, max_delay=4, delays="free").load_state_dict(state)


def test_a_state_with_good_signs_loads_them():
    saved = dale_layer()
    fresh = SpatialDelay(6, 4, max_delay=4, delays="free")
    fresh.load_state_dict(saved.state_dict())
    assert torch.equal(fresh.sign, saved.sign)
    check_signs(torch.tensor([1.0, -1.0]))
