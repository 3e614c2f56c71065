"""RunSummary: summary.json after a fit from Python and the test that follows."""

from __future__ import annotations

import json

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_modules.callbacks import LastCheckpoint, RunSummary
from lightning_modules.classifier import SpikingClassifier
from spatial_layers.networks import SpatialSNN
from tests.helpers.callbacks import loaders, trainer


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
