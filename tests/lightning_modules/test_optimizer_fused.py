"""The classifier's Adam(W) runs fused (one kernel, no host sync); a short fit gives the
numbers of torch's plain for-loop Adam(W) to float rounding."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules import classifier
from lightning_modules.classifier import SpikingClassifier, adam_implementation
from spatial_layers.networks import SpatialSNN


def floats(model) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().clone()
        for k, v in model.state_dict().items()
        if isinstance(v, torch.Tensor) and v.is_floating_point()
    }


def fit(optimizer: str, tmp_path, steps: int = 12):
    """(parameters before, parameters after) a fit of ``steps`` optimizer steps."""
    L.seed_everything(7, verbose=False)
    generator = torch.Generator().manual_seed(3)
    x = (torch.rand(32, 12, 5, generator=generator) < 0.4).float()
    y = torch.randint(0, 3, (32,), generator=generator)
    model = SpikingClassifier(
        SpatialSNN(5, 3, [16], max_delay=4, batch_norm=True, init_gain=2.0),
        optimizer=optimizer,
        weight_decay=0.01 if optimizer == "adamw" else 0.0,
        scheduler="none",
        position_scheduler="none",
    )
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    before = floats(model)
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=8))
    return before, floats(model)


def test_cpu_and_cuda_parameters_take_the_fused_kernel():
    assert adam_implementation([torch.zeros(2, requires_grad=True)]) == {"fused": True}
    assert adam_implementation([torch.zeros(2, device="meta")]) == {"foreach": True}


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_a_short_fit_equals_the_for_loop_optimizer(optimizer, tmp_path, monkeypatch):
    before, fused = fit(optimizer, tmp_path / "fused")
    monkeypatch.setattr(classifier, "adam_implementation", lambda params: {"foreach": False})
    _, plain = fit(optimizer, tmp_path / "plain")
    assert fused.keys() == plain.keys()
    for name, value in fused.items():
        torch.testing.assert_close(value, plain[name], rtol=1e-5, atol=1e-6, msg=name)
    # The fit moved every parameter group (not a comparison of two initialisations).
    moved = [name for name, value in fused.items() if not torch.equal(value, before[name])]
    assert any("coords" in name for name in moved) and any("weight" in name for name in moved)
