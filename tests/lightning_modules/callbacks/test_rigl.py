"""RigL: drop and regrowth counts on the cosine schedule, by weight and dense gradient."""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest
import torch

from lightning_modules.callbacks import RigL
from spatial_layers import SpatialDelay
from spatial_layers.sparsity import cosine_drop_fraction, set_density, spatial_delay_layers
from tests.helpers.rewiring import Probe, TinyClassifier, loader, record_dense_gradient, trainer


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: RigL(sparsity=1.0), "sparsity"),
        (lambda: RigL(delta_t=0), "delta_t"),
        (lambda: RigL(delta_t=2.5), "delta_t"),
        (lambda: RigL(alpha=0.0), "alpha"),
        (lambda: RigL(alpha=1.5), "alpha"),
        (lambda: RigL(t_end_fraction=0.0), "t_end_fraction"),
        (lambda: RigL(distribution="per-neuron"), "distribution"),
    ],
)
def test_invalid_settings_fail_at_construction(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


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

    record_dense_gradient(rigl, fake_trainer, model, loss)
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
