"""LayoutPlots: the layout and delay plots written during a fit."""

from __future__ import annotations

from lightning_modules.callbacks import LayoutPlots
from lightning_modules.classifier import SpikingClassifier
from spatial_layers.networks import SpatialSNN
from tests.helpers.callbacks import loaders, trainer


def test_layout_plots_callback_writes_pngs(tmp_path):
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=4))
    plots = LayoutPlots(every_n_epochs=1, top_k=5)
    trainer(tmp_path, [plots], max_epochs=2).fit(model, loaders())
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["delays.png", "delays_epoch1.png", "layout.png", "layout_epoch1.png"]
