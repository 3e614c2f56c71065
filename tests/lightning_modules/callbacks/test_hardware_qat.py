"""HardwareQAT: the switch into the hardware profile at the planned step, and what it refuses."""

from __future__ import annotations

import lightning as L
import pytest

from lightning_modules.callbacks import HardwareQAT, RoundDelays
from lightning_modules.classifier import SpikingClassifier
from lightning_modules.data import YinYangDataModule
from tests.helpers.hardware import small_net
from tests.helpers.training import quiet_steps_trainer


def fit(callbacks, net, max_steps=6):
    datamodule = YinYangDataModule(
        train_size=64, val_size=16, test_size=16, batch_size=16, num_steps=20, t_max=12
    )
    model = SpikingClassifier(net, readout="mean")
    trainer = quiet_steps_trainer(callbacks, max_steps)
    trainer.fit(model, datamodule)
    return model


def test_hardware_qat_switches_at_the_planned_step():
    seen = []

    class Probe(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(pl_module.net.hardware_profile)

    model = fit([HardwareQAT("loihi2", after=0.5), Probe()], small_net(), max_steps=6)
    assert seen == [None, None, None, "loihi2", "loihi2", "loihi2"]
    assert model.net.hardware_profile == "loihi2"


def test_hardware_qat_refuses_what_would_conflict():
    with pytest.raises(ValueError, match="remove RoundDelays"):
        fit([HardwareQAT(), RoundDelays(0.5)], small_net())
    with pytest.raises(ValueError, match="bias=False"):
        fit([HardwareQAT()], small_net(bias=True))
    with pytest.raises(ValueError, match=r"fraction of training in \[0, 1\)"):
        HardwareQAT(after=1.0)
    with pytest.raises(ValueError, match="one of"):
        HardwareQAT(target="truenorth")
