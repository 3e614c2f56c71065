"""SpikingClassifier: readouts, schedules, optimizer groups, evaluation kernels, checkpoints."""

from __future__ import annotations

import sys
import types

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.classifier import (
    LRFactor,
    SpikingClassifier,
    network_config,
    readout_logits,
)
from lightning_modules.evaluation import load_classifier
from spatial_layers.networks import SNNOutput, SpatialSNN
from tests.helpers.training import quiet_trainer


def spike_batch(batch=6, steps=10, channels=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, steps, channels, generator=generator) < 0.4).float()
    return x, torch.randint(0, 3, (batch,), generator=generator)


def loaders(n=24, batch=8):
    x, y = spike_batch(n, seed=3)
    return DataLoader(TensorDataset(x, y), batch_size=batch)


def test_readouts():
    membrane = torch.randn(7, 4, 3)
    spikes = (torch.rand(7, 4, 3) > 0.5).float()
    out = SNNOutput(membrane, spikes, [], [])
    torch.testing.assert_close(readout_logits(out, "max"), membrane.max(0).values)
    torch.testing.assert_close(readout_logits(out, "mean"), membrane.mean(0))
    torch.testing.assert_close(readout_logits(out, "sum"), membrane.softmax(-1).sum(0))
    torch.testing.assert_close(readout_logits(out, "spike_count"), spikes.sum(0))
    with pytest.raises(ValueError, match="spiking_output"):
        readout_logits(SNNOutput(membrane, None, [], []), "spike_count")


@pytest.mark.parametrize("readout", ["max", "sum", "mean", "spike_count"])
def test_forward_gives_logits(readout):
    model = SpikingClassifier(
        SpatialSNN(5, 3, [8], max_delay=3, spiking_output=readout == "spike_count"),
        readout=readout,
    )
    x, _ = spike_batch()
    assert model(x).shape == (6, 3)


def test_spike_count_readout_refuses_a_network_that_does_not_spike():
    with pytest.raises(ValueError, match="spiking_output=True"):
        SpikingClassifier(SpatialSNN(5, 3, [8]), readout="spike_count")
    with pytest.raises(TypeError, match="must be a SpatialSNN"):
        SpikingClassifier(torch.nn.Linear(5, 3))
    with pytest.raises(TypeError, match="num_inputs"):  # a recorded config, incomplete
        SpikingClassifier({"class_path": "spatial_layers.networks.SpatialSNN"})
    with pytest.raises(ValueError, match="not a network class of spatial_layers"):
        SpikingClassifier({"class_path": "subprocess.Popen", "init_args": {"args": ["true"]}})


def test_checkpoints_hold_the_network_as_plain_config_and_rebuild_it(tmp_path):
    net = SpatialSNN(5, 3, (8, 6), dim=3, max_delay=4, recurrent=True, readout_beta=0.8)
    model = SpikingClassifier(net, readout="mean", lr=0.02)
    trainer = quiet_trainer(tmp_path, limit_train_batches=1)
    trainer.fit(model, loaders())
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)["hyper_parameters"]
    assert saved["net"] == network_config(net)
    assert saved["net"]["init_args"]["hidden_sizes"] == [8, 6]
    assert saved["net"]["init_args"]["dim"] == 3 and saved["lr"] == 0.02
    assert model.hparams_initial["net"] == saved["net"]  # loggers record the network too
    x, _ = spike_batch()
    expected = model.eval()(x)
    rebuilt, _ = load_classifier(path)
    torch.testing.assert_close(rebuilt(x), expected, rtol=0, atol=0)
    plain = SpikingClassifier.load_from_checkpoint(path)  # the network from its config
    torch.testing.assert_close(plain.eval()(x), expected, rtol=0, atol=0)
    again = SpikingClassifier.load_from_checkpoint(
        path, net=SpatialSNN(**saved["net"]["init_args"])
    )
    torch.testing.assert_close(again.eval()(x), expected, rtol=0, atol=0)


def test_lr_factors_match_torch_schedulers():
    total = 50
    param = torch.nn.Parameter(torch.zeros(1))
    onecycle_opt = torch.optim.SGD([param], lr=1.0)
    onecycle = torch.optim.lr_scheduler.OneCycleLR(
        onecycle_opt, max_lr=5.0, total_steps=total, cycle_momentum=False
    )
    cosine_opt = torch.optim.SGD([param], lr=1.0)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(cosine_opt, T_max=total)
    ours_one, ours_cos = LRFactor("one_cycle", total, peak=5.0), LRFactor("cosine", total)
    for step in range(total):
        assert ours_one(step) == pytest.approx(onecycle_opt.param_groups[0]["lr"], rel=1e-6)
        assert ours_cos(step) == pytest.approx(cosine_opt.param_groups[0]["lr"], abs=1e-9)
        onecycle_opt.step(), onecycle.step(), cosine_opt.step(), cosine.step()
    assert LRFactor("none", total)(17) == 1.0


@pytest.mark.parametrize("delays", ["spatial", "free", "none"])
def test_parameter_groups(delays):
    model = SpikingClassifier(SpatialSNN(5, 3, [8], delays=delays, batch_norm=True))
    weights, positions = model.parameter_groups()
    ids = {id(p) for p in weights} | {id(p) for p in positions}
    assert len(ids) == len(weights) + len(positions) == len(list(model.parameters()))
    expected = {"spatial": 3, "free": 2, "none": 0}[delays]
    assert len(positions) == expected  # 3 populations in spatial mode, 2 free-delay layers


def test_optimizer_groups_and_schedules_in_a_fit(tmp_path):
    model = SpikingClassifier(
        SpatialSNN(5, 3, [8], max_delay=3), lr=1e-3, position_lr=0.1,
        scheduler="one_cycle", position_scheduler="cosine",
    )  # fmt: skip
    trainer = quiet_trainer(tmp_path, max_epochs=2)
    trainer.fit(model, loaders(), loaders())
    optimizer = trainer.optimizers[0]
    names = [g["name"] for g in optimizer.param_groups]
    assert names == ["weights", "positions"]
    total = trainer.estimated_stepping_batches
    assert total == 6
    # after the run the schedules sit at their last step
    weights_lr, positions_lr = (g["lr"] for g in optimizer.param_groups)
    assert weights_lr == pytest.approx(1e-3 * LRFactor("one_cycle", total, 5.0)(total))
    assert positions_lr == pytest.approx(0.1 * LRFactor("cosine", total)(total), abs=1e-12)


def test_eval_kernel_round_is_used_for_evaluation_only(tmp_path):
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=3), eval_kernel="round")
    seen = []

    class Spy(L.Callback):
        def on_validation_batch_start(self, trainer, pl_module, *args):
            seen.append(("val", {layer.kernel_kind for layer in pl_module.delay_layers()}))

        def on_train_batch_start(self, trainer, pl_module, *args):
            seen.append(("train", {layer.kernel_kind for layer in pl_module.delay_layers()}))

    saved_at_validation = ModelCheckpoint(tmp_path, "val", save_on_train_epoch_end=False)
    trainer = quiet_trainer(
        tmp_path, callbacks=[Spy(), saved_at_validation], limit_train_batches=2,
        enable_checkpointing=True,
    )  # fmt: skip
    trainer.fit(model, loaders(), loaders())
    assert {kinds.pop() for stage, kinds in seen if stage == "val"} == {"round"}
    assert {kinds.pop() for stage, kinds in seen if stage == "train"} == {"gauss"}
    assert {layer.kernel_kind for layer in model.delay_layers()} == {"gauss"}
    # saved at validation end (as with val_check_interval < 1), before the module's hook
    # restores the training kernel: the checkpoint holds it all the same, for a resume
    state = torch.load(tmp_path / "val.ckpt", weights_only=True)["state_dict"]
    layer_records = [v for k, v in state.items() if k.endswith("synapses._extra_state")]
    assert [record["kernel"] for record in layer_records if isinstance(record, dict)] == [
        "gauss", "gauss"
    ]  # fmt: skip


def test_wiring_cost_is_added_lazily(tmp_path, monkeypatch):
    # without the term the sparsity module is never needed
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=3))
    x, y = spike_batch()
    plain = model.training_step((x, y), 0)
    fake = types.ModuleType("spatial_layers.sparsity")
    fake.wiring_cost = lambda layer: layer.effective_weight().abs().sum()
    monkeypatch.setitem(sys.modules, "spatial_layers.sparsity", fake)
    model.hparams.wiring_cost = 0.5
    expected = plain + 0.5 * sum(lay.weight.abs().sum() for lay in model.delay_layers())
    torch.testing.assert_close(model.training_step((x, y), 0), expected)


def test_no_state_leak_between_batches():
    model = SpikingClassifier(SpatialSNN(5, 3, [16], max_delay=5, recurrent=True)).eval()
    with torch.no_grad():
        for layer in model.delay_layers():
            layer.weight.mul_(4)
    first, _ = spike_batch(seed=1)
    second, _ = spike_batch(seed=2)
    with torch.no_grad():
        fresh = model(second)
        model(first)
        torch.testing.assert_close(model(second), fresh, rtol=0, atol=0)


def test_sigmas_travel_with_the_checkpoint(tmp_path):
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=6))
    for i, layer in enumerate(model.delay_layers()):
        layer.sigma = 0.5 + i
    fresh = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=6))
    fresh.load_state_dict(model.state_dict())
    assert [lay.sigma for lay in fresh.delay_layers()] == [0.5, 1.5]


def test_checkpoints_with_sigmas_beside_the_state_dict_still_load():
    """The format before sigma was a buffer: ``delay_sigmas`` and no kernel_sigma keys."""
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=6))
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("kernel_sigma")}
    checkpoint = {"state_dict": state, "delay_sigmas": [0.5, 1.5]}
    fresh = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=6))
    with pytest.raises(RuntimeError, match="kernel_sigma"):
        fresh.load_state_dict(state)
    fresh.on_load_checkpoint(checkpoint)
    fresh.load_state_dict(checkpoint["state_dict"])
    assert [lay.sigma for lay in fresh.delay_layers()] == [0.5, 1.5]
    assert "delay_sigmas" not in checkpoint


def test_predict_gives_labels_classes_and_readouts(tmp_path):
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=3))
    loader = loaders()
    predictions = quiet_trainer(tmp_path).predict(model, loader)
    spikes, labels = (torch.cat(parts) for parts in zip(*loader, strict=True))
    with torch.no_grad():
        readout = model(spikes)
    assert torch.equal(torch.cat([p.label for p in predictions]), labels)
    torch.testing.assert_close(torch.cat([p.readout for p in predictions]), readout)
    assert torch.equal(torch.cat([p.prediction for p in predictions]), readout.argmax(-1))


def test_checkpoints_without_settings_records_load_with_a_warning():
    """The format before the network and its layers recorded their settings (_extra_state)."""
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=6, kernel="linear"))
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("_extra_state")}
    fresh = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=6, kernel="linear"))
    with pytest.warns(UserWarning, match="predates settings in the state dict"):
        fresh.on_load_checkpoint(checkpoint := {"state_dict": state})
    fresh.load_state_dict(checkpoint["state_dict"])
    assert {layer.kernel_kind for layer in fresh.delay_layers()} == {"linear"}


class RecordLearningRates(L.Callback):
    def __init__(self):
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, *args):
        rates = [group["lr"] for group in trainer.optimizers[0].param_groups]
        self.seen.append((trainer.global_step, rates))


def test_a_resumed_run_with_more_epochs_follows_its_own_schedule(tmp_path):
    """Resuming a finished 2-epoch run with max_epochs=3: the extra epoch trains at the
    3-epoch cosine schedule's rates (the restored LambdaLR used to keep the 2-epoch plan:
    learning rate 0, parameters unchanged)."""
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=3), lr=0.01, position_lr=0.1)
    quiet_trainer(tmp_path, max_epochs=2).fit(model, loaders())
    path = tmp_path / "finished.ckpt"
    model.trainer.save_checkpoint(path)
    resumed = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=3), lr=0.01, position_lr=0.1)
    rates = RecordLearningRates()
    quiet_trainer(tmp_path, max_epochs=3, callbacks=[rates]).fit(
        resumed, loaders(), ckpt_path=path, weights_only=True
    )
    assert [step for step, _ in rates.seen] == [6, 7, 8]
    for step, (weights_lr, positions_lr) in rates.seen:
        assert weights_lr == pytest.approx(0.01 * LRFactor("cosine", 9)(step), rel=1e-12)
        assert positions_lr == pytest.approx(0.1 * LRFactor("cosine", 9)(step), rel=1e-12)
    before = dict(model.named_parameters())
    moved = [n for n, p in resumed.named_parameters() if not torch.equal(p, before[n])]
    assert "net.hidden.0.synapses.weight" in moved and "net.positions.1.coords" in moved


class NaNGradientAt(L.Callback):
    """Makes one coordinate's gradient NaN before optimizer step ``step`` (as a bad
    learning rate or an overflow would), so that the step writes NaN into it."""

    def __init__(self, step):
        self.step = step

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if trainer.global_step == self.step:
            pl_module.net.positions[1].coords.grad[0, 0] = float("nan")


def test_a_nan_parameter_stops_training_at_its_step_naming_it(tmp_path):
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=3), position_lr=0.05)
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[NaNGradientAt(4)])
    with pytest.raises(FloatingPointError) as error:
        trainer.fit(model, loaders())
    message = str(error.value)
    assert (
        "after optimizer step 5: NaN or Inf in net.positions.1.coords (1 of 16 values)" in message
    )
    assert "model.position_lr=0.05" in message
    assert trainer.global_step == 5
