"""Callbacks together in one fit: Dale, DEEP R and RigL never give a synapse the wrong sign."""

from __future__ import annotations

import torch

from lightning_modules.callbacks import Dale, DeepR, RigL
from spatial_layers.sparsity import spatial_delay_layers
from tests.helpers.rewiring import Probe, TinyClassifier, loader, trainer


def test_no_synapse_ever_has_the_wrong_sign_with_dale_deepr_and_rigl():
    torch.manual_seed(1)
    probe = Probe(0.75, dale=True)
    model = TinyClassifier(lr=3e-2, recurrent_like=True)
    deepr = DeepR(0.75, l1=1e-3, noise_temperature=1e-4)
    rigl = RigL(0.75, delta_t=5)
    fit = trainer([Dale(0.8), rigl, deepr, probe], max_steps=60)
    fit.fit(model, loader())
    assert sum(deepr.removed_total.values()) > 0
    assert rigl.last_events and rigl.last_events[0].step == 40  # periodic drops ran too
    layers = dict(spatial_delay_layers(model))
    for layer in layers.values():
        assert layer.sign is not None
        assert int((layer.sign > 0).sum()) == round(0.8 * layer.in_features)
    # one sign per presynaptic neuron, whichever layer its synapses are in
    assert torch.equal(layers["net.readout"].sign, layers["net.side"].sign)
