"""DEEP R: removes exactly the synapses whose sign flipped, regrows, follows the Langevin
update, and saves its signs with the checkpoint."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from lightning_modules.callbacks import DeepR, RigL
from spatial_layers import SpatialDelay
from spatial_layers.sparsity import assign_dale_signs
from tests.helpers.rewiring import record_dense_gradient


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: DeepR(sparsity=1.0), "sparsity"),
        (lambda: DeepR(sparsity=-0.1), "sparsity"),
        (lambda: DeepR(l1=-1.0), "l1"),
        (lambda: DeepR(noise_temperature=float("nan")), "noise_temperature"),
        (lambda: DeepR(distribution="per-neuron"), "distribution"),
    ],
)
def test_invalid_settings_fail_at_construction(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def _deepr_on(layers_model, **kwargs) -> DeepR:
    deepr = DeepR(**kwargs)
    fake_trainer = SimpleNamespace(callbacks=[deepr], global_step=0)
    deepr.setup(fake_trainer, layers_model, "fit")
    deepr.on_train_start(fake_trainer, layers_model)
    return deepr


def test_deepr_removes_exactly_the_sign_flipped_synapses():
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({"a": SpatialDelay(30, 20, max_delay=2)})
    layer = model["a"]
    deepr = _deepr_on(model, sparsity=0.7, l1=0.0, noise_temperature=0.0)
    before = layer.mask.clone()
    theta_sign = torch.where(layer.weight > 0, 1.0, -1.0)
    active = before.nonzero()
    flip = active[torch.randperm(len(active))[:25]]
    with torch.no_grad():  # an "optimizer step" that pushes 25 synapses across zero
        layer.weight[flip[:, 0], flip[:, 1]] *= -0.5
    flipped = torch.zeros_like(before)
    flipped[flip[:, 0], flip[:, 1]] = True
    kept_weights = layer.weight.detach().clone()

    (event,) = deepr.rewire(step=1)
    removed = before & ~layer.mask
    grown = layer.mask & ~before
    assert torch.equal(removed, flipped)
    assert int(grown.sum()) == 25 and event.dropped == event.grown == 25
    assert int(layer.mask.sum()) == int(before.sum()) == event.active
    assert torch.all(layer.weight[grown] == 0) and torch.all(layer.weight[removed] == 0)
    untouched = before & ~flipped
    torch.testing.assert_close(layer.weight[untouched], kept_weights[untouched])
    # the fixed signs of the survivors are unchanged
    assert torch.all(layer.weight[untouched] * theta_sign[untouched] > 0)


@pytest.mark.parametrize("dale", [False, True])
def test_deepr_with_rigl_regrows_by_gradient_with_the_asked_sign(dale):
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({"a": SpatialDelay(20, 10, max_delay=2)})
    layer = model["a"]
    if dale:
        assign_dale_signs(layer, 0.5, torch.Generator().manual_seed(0))
    rigl, deepr = RigL(0.8), DeepR(0.8, l1=0.0, noise_temperature=0.0)
    fake_trainer = SimpleNamespace(
        callbacks=[rigl, deepr], global_step=0, estimated_stepping_batches=100
    )
    for callback in (rigl, deepr):
        callback.setup(fake_trainer, model, "fit")
        callback.on_train_start(fake_trainer, model)
    before = layer.mask.clone()
    grad = torch.randn(10, 20)
    # a loss whose dense gradient with respect to the raw weight is `grad`
    record_dense_gradient(rigl, fake_trainer, model, lambda: (layer.weight * grad).sum())
    torch.testing.assert_close(rigl.dense_gradient("a"), grad)
    assert torch.equal(layer.mask, before)  # closed again
    flip = before.nonzero()[:6]
    with torch.no_grad():
        layer.weight[flip[:, 0], flip[:, 1]] *= -1.0 if not dale else 0.0
        if dale:
            layer.weight[flip[:, 0], flip[:, 1]] -= 0.1  # theta < 0
    (event,) = deepr.rewire(step=1)
    grown = layer.mask & ~before
    assert event.dropped == event.grown == 6 == int(grown.sum())
    scores = grad.abs() if not dale else (-grad).clamp_min(0)
    expected = scores.masked_fill(before, -1.0).flatten().topk(6).indices
    assert set(grown.flatten().nonzero().flatten().tolist()) == set(expected.tolist())
    negative = deepr.synapse_signs("a") < 0
    if dale:
        assert not negative.any()
    else:  # the regrown synapse takes the sign the loss asks for: -sign(grad)
        assert torch.equal(negative[grown], grad[grown] > 0)


def test_deepr_l1_and_noise_follow_the_langevin_update():
    model = torch.nn.ModuleDict({"a": SpatialDelay(50, 40, max_delay=2)})
    layer = model["a"]
    with torch.no_grad():
        layer.weight.copy_(torch.where(torch.rand(40, 50) < 0.5, -1.0, 1.0))  # far from zero
    deepr = _deepr_on(model, sparsity=0.5, l1=0.1, noise_temperature=0.0)
    param = layer.weight
    optimizer = torch.optim.SGD([param], lr=0.5)
    before = param.detach().clone()
    deepr.rewire(1, [optimizer])
    active = layer.mask
    # theta = |w| shrinks by lr * l1 = 0.05
    torch.testing.assert_close(param[active].abs(), before[active].abs() - 0.05)
    deepr.l1, deepr.noise_temperature = 0.0, 0.01
    before = param.detach().clone()
    deepr.rewire(2, [optimizer])
    step = (param - before)[active]
    expected_std = (2 * 0.5 * 0.01) ** 0.5
    assert abs(step.std().item() - expected_std) < 0.15 * expected_std
    assert torch.all(param[~active] == 0)


def test_deepr_signs_are_saved_with_the_checkpoint():
    model = torch.nn.ModuleDict({"a": SpatialDelay(10, 8, max_delay=2)})
    deepr = _deepr_on(model, sparsity=0.5, seed=1)
    restored = DeepR(sparsity=0.5, seed=2)
    restored.load_state_dict(deepr.state_dict())
    fake_trainer = SimpleNamespace(callbacks=[restored], global_step=0)
    restored.setup(fake_trainer, model, "fit")
    restored.on_train_start(fake_trainer, model)
    assert torch.equal(restored.synapse_signs("a"), deepr.synapse_signs("a"))
