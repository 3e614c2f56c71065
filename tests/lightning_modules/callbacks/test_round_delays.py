"""RoundDelays: integer delays (and k-bit weights) for the last part of training."""

from __future__ import annotations

import lightning as L
import pytest

from lightning_modules.callbacks import RoundDelays, SigmaAnnealing
from lightning_modules.classifier import SpikingClassifier
from spatial_layers.networks import SpatialSNN
from tests.helpers.callbacks import loaders, trainer


def test_round_delays_switches_to_integer_delays_for_the_last_part_of_training(tmp_path):
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=6))
    kinds, val_kinds = [], []

    class Spy(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            layers = pl_module.delay_layers()
            kinds.append({(layer.kernel_kind, layer.weight_bits) for layer in layers})

        def on_validation_batch_start(self, trainer, pl_module, *args):
            val_kinds.append({layer.kernel_kind for layer in pl_module.delay_layers()})

    callbacks = [SigmaAnnealing(), RoundDelays(after=0.5, weight_bits=8), Spy()]
    trainer(tmp_path, callbacks, limit_val_batches=1).fit(model, loaders(), loaders(8))
    assert kinds == [{("gauss", None)}] * 8 + [{("round", 8)}] * 8  # 16 steps
    assert val_kinds[-1] == {"round"}  # the last validation sees the integer delays
    for after in (1.0, -0.1, True):
        with pytest.raises(ValueError, match="after"):
            RoundDelays(after=after)
    kinds.clear()  # without weight_bits, the layers keep the bits they had at fit start
    for layer in model.delay_layers():
        layer.kernel_kind, layer.weight_bits = "gauss", 6
    trainer(tmp_path, [RoundDelays(after=0.5), Spy()]).fit(model, loaders())
    assert kinds == [{("gauss", 6)}] * 8 + [{("round", 6)}] * 8
    with pytest.raises(ValueError, match="bits"):
        RoundDelays(weight_bits=1)
