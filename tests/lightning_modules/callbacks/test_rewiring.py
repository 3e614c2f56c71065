"""DEEP R, RigL and Dale callbacks: exact sparsity, signs, counts, dense gradients."""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lm_test_probes import differing_keys
from rewiring_testing import TinyClassifier, loader, trainer

from lightning_modules.callbacks import Dale, DeepR, RigL
from spatial_layers import SpatialDelay
from spatial_layers.sparsity import (
    assign_dale_signs,
    cosine_drop_fraction,
    layer_active_counts,
    set_density,
    spatial_delay_layers,
)

# ----------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: DeepR(sparsity=1.0), "sparsity"),
        (lambda: DeepR(sparsity=-0.1), "sparsity"),
        (lambda: DeepR(l1=-1.0), "l1"),
        (lambda: DeepR(noise_temperature=float("nan")), "noise_temperature"),
        (lambda: RigL(sparsity=1.0), "sparsity"),
        (lambda: RigL(delta_t=0), "delta_t"),
        (lambda: RigL(delta_t=2.5), "delta_t"),
        (lambda: RigL(alpha=0.0), "alpha"),
        (lambda: RigL(alpha=1.5), "alpha"),
        (lambda: RigL(t_end_fraction=0.0), "t_end_fraction"),
        (lambda: RigL(distribution="per-neuron"), "distribution"),
        (lambda: DeepR(distribution="per-neuron"), "distribution"),
        (lambda: Dale(excitatory_fraction=1.2), "excitatory_fraction"),
        (lambda: Dale(excitatory_fraction=-0.5), "excitatory_fraction"),
    ],
)
def test_invalid_settings_fail_at_construction(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize(
    "pair",
    [
        (DeepR(0.9), RigL(0.8)),
        (DeepR(0.9), RigL(0.9, distribution="erk")),
        (DeepR(0.9, rescale=True), RigL(0.9)),
        (DeepR(0.9, layers=["net.hidden"]), RigL(0.9)),
    ],
    ids=["sparsity", "distribution", "rescale", "layers"],
)
def test_deepr_and_rigl_must_agree_on_sparsity(pair):
    with pytest.raises(ValueError, match="same layers at the same sparsity"):
        trainer(list(pair), max_steps=1).fit(TinyClassifier(), loader(16))


def test_one_callback_of_each_kind_per_trainer():
    first, second = RigL(0.9, seed=1), RigL(0.9, seed=2)  # (Lightning refuses this pair itself)
    with pytest.raises(ValueError, match="one RigL callback per trainer"):
        first.setup(SimpleNamespace(callbacks=[first, second]), TinyClassifier(), "fit")


# ----------------------------------------------------------------------------- probes


class Probe(L.Callback):
    """Checks invariants around every optimizer step; must come after the rewiring callbacks."""

    def __init__(self, sparsity: float, dale: bool = False, distribution: str = "uniform") -> None:
        self.sparsity = sparsity
        self.dale = dale
        self.distribution = distribution
        self.checks = 0
        self.previous: dict[str, torch.Tensor] = {}
        self.changes: list[tuple[int, str, int, int]] = []

    def layers(self, pl_module):
        return spatial_delay_layers(pl_module)

    def check_counts(self, pl_module):
        layers = self.layers(pl_module)
        shapes = [tuple(layer.mask.shape) for _, layer in layers]
        targets = layer_active_counts(shapes, self.sparsity, self.distribution)
        for (name, layer), target in zip(layers, targets, strict=True):
            assert int(layer.mask.sum()) == target, name
            assert torch.all(layer.weight[~layer.mask] == 0), name
            if self.dale:
                effective = layer.effective_weight()
                assert torch.all(effective * layer.sign >= 0), name
                assert torch.all(layer.weight[layer.mask] >= 0), name  # DEEP R's theta
        self.checks += 1

    def on_train_start(self, trainer, pl_module):
        self.check_counts(pl_module)
        self.previous = {n: layer.mask.clone() for n, layer in self.layers(pl_module)}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        # after RigL closed the masks: the optimizer never sees a dormant gradient
        for name, layer in self.layers(pl_module):
            assert torch.all(layer.weight.grad[~layer.mask] == 0), name
        self.check_counts(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.check_counts(pl_module)
        for name, layer in self.layers(pl_module):
            grown = layer.mask & ~self.previous[name]
            dropped = self.previous[name] & ~layer.mask
            assert torch.all(layer.weight[grown] == 0), "regrown weights start at 0"
            if grown.any() or dropped.any():
                self.changes.append(
                    (trainer.global_step, name, int(dropped.sum()), int(grown.sum()))
                )
            self.previous[name] = layer.mask.clone()

    def on_validation_start(self, trainer, pl_module):
        self.check_counts(pl_module)


# ----------------------------------------------------------------------------- whole fits


def erk_pair():
    return [RigL(0.8, delta_t=4, distribution="erk"), DeepR(0.8, l1=1e-3, distribution="erk")]


@pytest.mark.parametrize(
    ("make_callbacks", "distribution"),
    [
        pytest.param(lambda: [DeepR(0.8, l1=1e-3, noise_temperature=1e-4)], "uniform", id="deepr"),
        pytest.param(lambda: [RigL(0.8, alpha=0.5, delta_t=2)], "uniform", id="rigl"),
        pytest.param(
            lambda: [RigL(0.8, delta_t=4), DeepR(0.8, l1=1e-3)], "uniform", id="deepr+rigl"
        ),
        pytest.param(erk_pair, "erk", id="deepr+rigl-erk"),
    ],
)
def test_masks_hold_exact_sparsity_through_a_fit(make_callbacks, distribution):
    torch.manual_seed(0)
    probe = Probe(0.8, distribution=distribution)
    model = TinyClassifier()
    fit = trainer(
        [*make_callbacks(), probe], max_steps=24, limit_val_batches=1, val_check_interval=3
    )
    fit.fit(model, loader(), loader(16))
    assert probe.checks >= 2 * 24
    assert probe.changes, "rewiring never changed a mask"
    for _, _, dropped, grown in probe.changes:
        assert dropped == grown


def test_deepr_removes_before_rigl_updates_whatever_the_list_order():
    states = []
    for rigl_first in (True, False):
        torch.manual_seed(0)
        model = TinyClassifier()
        pair = [RigL(0.8, delta_t=4), DeepR(0.8, l1=1e-3, noise_temperature=1e-4)]
        callbacks = pair if rigl_first else pair[::-1]
        trainer(callbacks, max_steps=24).fit(model, loader())
        states.append(model.state_dict())
        assert [type(m).__name__ for m in callbacks[0].rewiring.members] == ["DeepR", "RigL"]
        assert callbacks[0].rewiring is callbacks[1].rewiring
    assert not differing_keys(states[1], states[0])


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


# ----------------------------------------------------------------------------- DEEP R


def _deepr_on(layers_model, **kwargs) -> DeepR:
    deepr = DeepR(**kwargs)
    fake_trainer = SimpleNamespace(callbacks=[deepr], global_step=0)
    deepr.setup(fake_trainer, layers_model, "fit")
    deepr.on_train_start(fake_trainer, layers_model)
    return deepr


def _record_dense_gradient(callback, fake_trainer, model, loss_of_layers) -> None:
    """One forward/backward through the shared hooks, as Lightning calls them."""
    callback.on_train_batch_start(fake_trainer, model, None, 0)
    loss_of_layers().backward()
    callback.on_before_optimizer_step(fake_trainer, model, None)


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
    _record_dense_gradient(rigl, fake_trainer, model, lambda: (layer.weight * grad).sum())
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


# ----------------------------------------------------------------------------- RigL


def test_rigl_counts_follow_the_cosine_schedule():
    torch.manual_seed(0)
    probe = Probe(0.8)
    rigl = RigL(0.8, alpha=0.6, delta_t=3, t_end_fraction=0.75)
    events = []

    class Recorder(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if rigl.last_events and rigl.last_events[0].step == trainer.global_step:
                events.extend(rigl.last_events)

    trainer([rigl, probe, Recorder()], max_steps=40).fit(TinyClassifier(), loader())
    assert rigl.t_end == 30
    steps = sorted({e.step for e in events})
    assert steps == list(range(3, 30, 3))
    for event in events:
        active = event.active
        expected = round(cosine_drop_fraction(event.step, 0.6, 30) * active)
        assert event.dropped == event.grown == expected
    recorded = {(s, n): (d, g) for s, n, d, g in probe.changes}
    for event in events:
        if event.dropped:
            assert recorded[(event.step, event.layer)] == (event.dropped, event.grown)
    # nothing changes outside update steps
    assert {s for s, *_ in probe.changes} <= set(steps)


def test_rigl_drops_smallest_and_regrows_largest_dense_gradient():
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({"a": SpatialDelay(16, 12, max_delay=3, kernel="linear")})
    layer = model["a"]
    rigl = RigL(0.75, alpha=0.4, delta_t=1)
    fake_trainer = SimpleNamespace(callbacks=[rigl], global_step=0)
    rigl.setup(fake_trainer, model, "fit")
    rigl.t_end = 100
    closed = layer.mask.clone()

    # dense reference: the gradient an unmasked copy of the layer gets
    reference = SpatialDelay(16, 12, max_delay=3, kernel="linear")
    reference.load_state_dict(layer.state_dict())
    reference.mask.fill_(True)
    x = (torch.rand(10, 4, 16) < 0.4).float()
    reference(x).pow(2).sum().backward()

    opened = []

    def loss():
        opened.append(bool(layer.mask.all()))
        return layer(x).pow(2).sum()

    _record_dense_gradient(rigl, fake_trainer, model, loss)
    assert opened == [True]  # the update step's forward saw the open mask
    assert torch.equal(layer.mask, closed)
    assert torch.all(layer.weight.grad[~closed] == 0)
    torch.testing.assert_close(rigl.dense_gradient("a"), reference.weight.grad)
    scores = rigl.dense_gradient("a").abs()

    weights = layer.weight.detach().clone()
    (event,) = rigl.update(step=10)
    k = round(cosine_drop_fraction(10, 0.4, 100) * int(closed.sum()))
    assert event.dropped == event.grown == k > 0
    dropped = closed & ~layer.mask
    grown = layer.mask & ~closed
    smallest = weights.abs().masked_fill(~closed, float("inf")).flatten().topk(k, largest=False)
    assert set(dropped.flatten().nonzero().flatten().tolist()) == set(smallest.indices.tolist())
    largest = scores.masked_fill(closed, -1.0).flatten().topk(k)
    assert set(grown.flatten().nonzero().flatten().tolist()) == set(largest.indices.tolist())
    assert torch.all(layer.weight[grown | dropped] == 0)


def test_rigl_needs_a_finite_run():
    with pytest.raises(ValueError, match="finite"):
        trainer([RigL(0.5)], max_steps=-1, max_epochs=-1).fit(TinyClassifier(), loader(16))


def test_set_density_is_left_alone_when_already_right():
    model = TinyClassifier()
    for _, layer in spatial_delay_layers(model):
        set_density(layer, 0.2, torch.Generator().manual_seed(5))
    masks = [layer.mask.clone() for _, layer in spatial_delay_layers(model)]
    rigl = RigL(0.8)
    rigl.setup(SimpleNamespace(callbacks=[rigl]), model, "fit")
    for mask, (_, layer) in zip(masks, spatial_delay_layers(model), strict=True):
        assert torch.equal(mask, layer.mask)
