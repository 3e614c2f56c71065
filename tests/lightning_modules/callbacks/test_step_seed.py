"""StepSeed: per-step reseeding from the seed and the step alone."""

from __future__ import annotations

import lightning as L
import torch

from lightning_modules.callbacks import StepSeed
from lightning_modules.classifier import SpikingClassifier
from spatial_layers.networks import SpatialSNN
from tests.helpers.callbacks import loaders, trainer


def test_step_seed_makes_each_step_depend_on_seed_and_step_only(tmp_path):
    draws = []

    class Draw(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, *args):
            draws.append(torch.rand(1).item())

    model = SpikingClassifier(SpatialSNN(5, 3, [4], max_delay=2))
    seed = StepSeed(seed=5)
    trainer(tmp_path, [seed, Draw()], max_epochs=2).fit(model, loaders())
    torch.manual_seed(seed.seed_for(5))
    assert draws[5] == torch.rand(1).item()
    assert len(set(draws)) == len(draws) == 8
