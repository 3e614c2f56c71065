"""HardwareQAT trains a cuba network in Loihi 2's stock LIF process (the loihi2 profile of
``neuron="cuba"``); the exported program runs spike for spike as the trained network, in
the numpy reference of the chip's integers, on Yin-Yang samples."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from lightning_modules.callbacks import HardwareQAT
from lightning_modules.classifier import SpikingClassifier
from lightning_modules.data import YinYangDataModule
from spatial_layers.hardware.loihi2.reference import run_program
from spatial_layers.networks import SpatialSNN

nir = pytest.importorskip("nir")


def test_hardware_qat_trains_cuba_in_lava_s_lif_and_the_reference_agrees():
    from spatial_layers.nir import to_nir
    from spatial_layers.nir.loihi2 import load_program

    torch.manual_seed(0)
    net = SpatialSNN(
        5, 3, [16], max_delay=8, beta=0.95, init_gain=5.0,
        neuron="cuba", alpha=0.5, reset="zero", reset_delay=False,
    )  # fmt: skip
    data = YinYangDataModule(
        train_size=64, val_size=16, test_size=32, batch_size=16, num_steps=20, t_max=12
    )
    model = SpikingClassifier(net, readout="mean", lr=0.01)
    trainer = L.Trainer(
        max_steps=8, callbacks=[HardwareQAT("loihi2", after=0.5)], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        accelerator="cpu", limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(model, data)
    assert model.net.hardware_profile == "loihi2"
    data.setup("test")
    (x, _), *_ = list(data.test_dataloader())
    x = x.transpose(0, 1)  # (T, B, 5), time-major
    with torch.no_grad():
        output = model.net.eval().run(x)
    program = load_program(to_nir(model.net, target="loihi2"))
    reference = run_program(program, x.numpy())
    ours = output.hidden_spikes[0].numpy().astype(bool)
    assert ours.any()
    assert int((reference.spikes["hidden_0"] != ours).sum()) == 0
    bits = program.populations[-1].fraction_bits
    assert np.array_equal(reference.membranes["readout"] * 2.0**-bits, output.membrane.numpy())
