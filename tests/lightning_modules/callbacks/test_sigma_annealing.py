"""Sigma annealing, layout plots, summary.json writer and per-epoch reseeding."""

from __future__ import annotations

import json
import math

import lightning as L
import pytest
import torch
from conftest import quiet_trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.callbacks import (
    HardwareQAT,
    LastCheckpoint,
    LayoutPlots,
    RoundDelays,
    RunSummary,
    SigmaAnnealing,
    StepSeed,
)
from lightning_modules.callbacks.sigma_annealing import annealed_sigma
from lightning_modules.classifier import SpikingClassifier
from lightning_modules.summary import (
    SUMMARY_KEYS,
    model_summary,
    plot_delay_histogram,
    plot_layout,
    populations,
    save_plots,
    write_summary,
)
from spatial_layers.networks import SpatialSNN


def loaders(n=32, batch=8, seed=3):
    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 10, 5, generator=generator) < 0.4).float()
    y = torch.randint(0, 3, (n,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=batch)


def trainer(tmp_path, callbacks, max_epochs=4, **kwargs):
    return quiet_trainer(tmp_path, callbacks, max_epochs=max_epochs, **kwargs)


def test_annealed_sigma_schedules():
    assert annealed_sigma(12.0, 0.5, 0.0, "exponential") == 12.0
    assert annealed_sigma(12.0, 0.5, 1.0, "exponential") == pytest.approx(0.5)
    assert annealed_sigma(12.0, 0.5, 0.5, "exponential") == pytest.approx(math.sqrt(6.0))
    assert annealed_sigma(12.0, 0.5, 7.0, "exponential") == pytest.approx(0.5)  # held after
    assert annealed_sigma(4.0, 1.0, 0.5, "linear") == 2.5
    assert annealed_sigma(4.0, 1.0, 0.5, "cosine") == pytest.approx(2.5)
    with pytest.raises(ValueError, match="schedule"):
        SigmaAnnealing(schedule="quadratic")
    with pytest.raises(ValueError, match="end"):
        SigmaAnnealing(end=0.0)


@pytest.mark.parametrize("interval", ["step", "epoch"])
def test_sigma_annealing_over_a_fit(tmp_path, interval):
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=12))
    seen = []

    class Spy(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            seen.append((trainer.global_step - 1, [lay.sigma for lay in pl_module.delay_layers()]))

    annealing = SigmaAnnealing(end=0.5, fraction=0.5, interval=interval)
    trainer(tmp_path, [annealing, Spy()]).fit(model, loaders())
    total_steps, steps_per_epoch = 16, 4
    for step, sigmas in seen:
        now, total = (step, total_steps) if interval == "step" else (step // steps_per_epoch, 4)
        expected = annealed_sigma(6.0, 0.5, now / (0.5 * total), "exponential")
        assert sigmas == [pytest.approx(expected)] * 2, step
    assert seen[0][1][0] == pytest.approx(6.0)  # max_delay / 2
    assert seen[-1][1][0] == pytest.approx(0.5)
    # every SpatialDelay of the model is reached
    assert len(seen[0][1]) == len(model.delay_layers()) == 2


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


@pytest.mark.parametrize("dim", [1, 2, 3, 4])
def test_layout_plot_every_dimension(tmp_path, dim):
    net = SpatialSNN(5, 3, [12, 6], dim=dim, max_delay=5, recurrent=dim == 2)
    assert [name for name, _ in populations(net)] == ["input", "hidden 1", "hidden 2", "output"]
    path = plot_layout(net, tmp_path / "layout.png", top_k=10)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_delay_histogram(net, tmp_path / "delays.png").stat().st_size > 1000


@pytest.mark.parametrize("delays", ["free", "none"])
def test_plots_without_coordinates(tmp_path, delays):
    net = SpatialSNN(5, 3, [12], delays=delays, max_delay=5)
    assert plot_layout(net, tmp_path / "layout.png") is None
    assert [p.name for p in save_plots(net, tmp_path)] == ["delays.png"]


def test_layout_plots_callback_writes_pngs(tmp_path):
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=4))
    plots = LayoutPlots(every_n_epochs=1, top_k=5)
    trainer(tmp_path, [plots], max_epochs=2).fit(model, loaders())
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["delays.png", "delays_epoch1.png", "layout.png", "layout_epoch1.png"]


def test_summary_keys_and_counts(tmp_path):
    net = SpatialSNN(5, 3, [60], dim=2)
    summary = model_summary(net)
    assert (summary["n_params"], summary["n_weights"], summary["n_coordinates"]) == (616, 480, 136)
    assert summary["sparsity"] == 0.0 and summary["delays"] == "spatial" and summary["dim"] == 2
    with torch.no_grad():
        net.layers[0].mask[:, :2] = False  # 120 of 480 synapses gone
    assert model_summary(net)["sparsity"] == pytest.approx(120 / 480)
    assert model_summary(net)["n_weights"] == 360
    full = {key: 0 for key in SUMMARY_KEYS} | {"test_acc": torch.tensor(0.5)}
    path = write_summary(tmp_path / "summary.json", full)
    assert json.loads(path.read_text())["test_acc"] == 0.5
    with pytest.raises(ValueError, match="wall_time_s"):
        write_summary(tmp_path / "bad.json", {k: 0 for k in SUMMARY_KEYS if k != "wall_time_s"})


@pytest.mark.parametrize("test_ckpt", ["last", "best_val"])
def test_run_summary_after_a_fit_from_python_and_the_test_that_follows(tmp_path, test_ckpt):
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=4))
    best = ModelCheckpoint(dirpath=tmp_path / "best", monitor="val_acc", mode="max")
    last = LastCheckpoint()
    summary = RunSummary(test_ckpt=test_ckpt)
    fit = trainer(tmp_path, [summary, best, last], max_epochs=3, enable_checkpointing=True)
    fit.fit(model, loaders(), loaders(16, seed=4))
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written == summary.summary and summary.path == tmp_path / "summary.json"
    assert written["test_acc"] is None and written["epochs"] == 3
    assert (written["n_weights"], written["n_coordinates"]) == (5 * 8 + 8 * 3, (5 + 8 + 3) * 2)
    if test_ckpt == "best_val":
        assert written["checkpoint"] == best.best_model_path
        assert written["val_acc"] == pytest.approx(float(best.best_model_score))
        assert written["best_val_epoch"] == torch.load(best.best_model_path)["epoch"]
    else:
        assert written["checkpoint"] == last.best_model_path
        assert written["val_acc"] == pytest.approx(float(fit.callback_metrics["val_acc"]))
    other = best.best_model_path if test_ckpt == "last" else last.best_model_path
    with pytest.warns(UserWarning, match="keeps no test accuracy"):
        fit.test(model, loaders(16, seed=5), ckpt_path=other, weights_only=True)
    assert json.loads((tmp_path / "summary.json").read_text())["test_acc"] is None
    result = fit.test(model, loaders(16, seed=5), ckpt_path=summary.test_checkpoint(fit))
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["test_acc"] == pytest.approx(result[0]["test_acc"])
    assert written["wall_time_s"] > 0


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


@pytest.mark.parametrize(
    "make",
    [SigmaAnnealing, lambda: RoundDelays(after=0.5), lambda: HardwareQAT(after=0.5), StepSeed],
)
def test_a_second_callback_of_a_kind_is_refused_naming_it(tmp_path, make):
    first, second = make(), make()
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=6, beta=0.95))
    name = type(first).__name__
    with pytest.raises(ValueError, match=rf"2 {name} callbacks .* silently override"):
        trainer(tmp_path, [first, second]).fit(model, loaders())
    trainer(tmp_path, [first], max_epochs=1).fit(model, loaders())  # one alone fits
