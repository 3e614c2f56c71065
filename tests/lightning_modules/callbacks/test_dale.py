"""Dale: one fixed sign per presynaptic neuron, kept over fits and checkpoints."""

from __future__ import annotations

import pytest
import torch

from lightning_modules.callbacks import Dale
from spatial_layers.sparsity import spatial_delay_layers
from tests.helpers.rewiring import TinyClassifier, loader, trainer


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: Dale(excitatory_fraction=1.2), "excitatory_fraction"),
        (lambda: Dale(excitatory_fraction=-0.5), "excitatory_fraction"),
    ],
)
def test_invalid_settings_fail_at_construction(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_dale_keeps_existing_signs_and_survives_checkpoints(tmp_path):
    model = TinyClassifier()
    trainer([Dale(0.5, seed=3)], max_steps=2).fit(model, loader(16))
    signs = [layer.sign.clone() for _, layer in spatial_delay_layers(model)]
    trainer([Dale(0.5, seed=4)], max_steps=2).fit(model, loader(16))
    for sign, (_, layer) in zip(signs, spatial_delay_layers(model), strict=True):
        assert torch.equal(sign, layer.sign)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    fresh = TinyClassifier()
    fresh.load_state_dict(torch.load(tmp_path / "model.pt"))
    for sign, (_, layer) in zip(signs, spatial_delay_layers(fresh), strict=True):
        assert torch.equal(sign, layer.sign)
