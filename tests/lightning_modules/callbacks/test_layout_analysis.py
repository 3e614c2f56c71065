"""LayoutAnalysis: the cheap layout measures at the end of fit into summary.json and the
loggers, every N epochs when asked, one per trainer, and what it costs."""

from __future__ import annotations

import csv
import json
import time

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.callbacks import LayoutAnalysis, RunSummary
from lightning_modules.classifier import SpikingClassifier
from spatial_layers import SpatialSNN
from spatial_layers.analysis import cheap_measures
from tests.helpers.training import quiet_trainer

MEASURES = {
    "wiring_cost", "mean_length", "weighted_mean_length", "wiring_efficiency",
    "delay_zero_fraction", "delay_max_fraction", "delay_clamped_high_fraction",
    "distance_weight_correlation", "modularity", "communities", "clustering", "path_length",
    "global_efficiency",
}  # fmt: skip


def loader(n: int = 32, seed: int = 3) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 10, 5, generator=generator) < 0.4).float()
    y = torch.randint(0, 3, (n,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=8)


def fit(tmp_path, callbacks, *, max_epochs: int = 2, logger=False) -> L.Trainer:
    torch.manual_seed(0)
    trainer = quiet_trainer(tmp_path, callbacks, max_epochs=max_epochs, logger=logger)
    trainer.fit(SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=4)), loader())
    return trainer


def test_the_measures_go_into_summary_json(tmp_path):
    analysis = LayoutAnalysis()
    fit(tmp_path, [analysis, RunSummary()])
    written = json.loads((tmp_path / "summary.json").read_text())["analysis"]
    assert set(written) == MEASURES | {"seconds"}
    assert written["wiring_cost"] > 0 and 0 < written["modularity"] < 1
    assert written == pytest.approx(analysis.measures)


def test_the_order_of_the_callbacks_does_not_matter(tmp_path):
    fit(tmp_path, [RunSummary(), LayoutAnalysis()])
    assert "analysis" in json.loads((tmp_path / "summary.json").read_text())


def test_every_n_epochs_logs_during_training(tmp_path):
    logger = CSVLogger(tmp_path, name="csv")
    fit(tmp_path, [LayoutAnalysis(every_n_epochs=1)], max_epochs=3, logger=logger)
    with open(logger.log_dir + "/metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row.get("analysis/wiring_cost")]
    assert len(rows) == 3  # epochs 1 and 2, and the end of fit


def test_disabled_and_without_a_spatial_network(tmp_path):
    off = LayoutAnalysis(enabled=False)
    fit(tmp_path, [off, RunSummary()])
    assert off.measures is None and off.summary_fields() == {}
    assert "analysis" not in json.loads((tmp_path / "summary.json").read_text())

    class Plain(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    plain = LayoutAnalysis()
    trainer = quiet_trainer(tmp_path, [plain])
    with pytest.warns(UserWarning, match="SpatialSNN"):
        trainer.fit(Plain(), DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2))
    assert plain.measures is None


def test_a_second_one_is_refused_and_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="--layout_analysis"):
        fit(tmp_path, [LayoutAnalysis(), LayoutAnalysis()])
    with pytest.raises(ValueError, match="every_n_epochs"):
        LayoutAnalysis(every_n_epochs=0)


def test_cost_on_the_readme_networks_shape():
    """The README's Yin-Yang network (5-128-3): the measures take a fraction of a second."""
    torch.manual_seed(0)
    net = SpatialSNN(5, 3, [128], max_delay=10, init_gain=5.0)
    started = time.process_time()
    measures = cheap_measures(net)
    seconds = time.process_time() - started
    assert set(measures) == MEASURES
    assert seconds < 5.0  # about 0.1 s of CPU; generous for a loaded test machine
