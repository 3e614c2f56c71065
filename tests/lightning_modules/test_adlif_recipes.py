"""The neuron-family recipes (issue 23): the SHD / SSC recipes of adaptive neurons with
spatial delays train end to end on tiny SHD-format files; the Yin-Yang recipes change only
the neurons."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lightning_modules.cli import make_cli
from lightning_modules.data.synthetic import make_synthetic_heidelberg
from spatial_layers.neurons import AdaptiveLeaky

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def configs(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--config", str(RECIPES / name))]


@pytest.fixture
def no_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["spsnn"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("chain", "dataset", "classes"),
    [
        (("shd_dcls_free.yaml", "shd_adlif_d2.yaml"), "SHD", 20),
        (("shd_dcls_free.yaml", "shd_adlif_d2.yaml", "ssc_adlif_d2.yaml"), "SSC", 35),
    ],
    ids=["shd", "ssc"],
)
def test_adlif_recipe_trains_on_tiny_heidelberg_files(chain, dataset, classes, tmp_path, no_argv):
    samples = (
        {"train": 48, "test": 16} if dataset == "SHD" else {"train": 70, "valid": 35, "test": 35}
    )
    make_synthetic_heidelberg(tmp_path / "data", dataset, num_samples=samples)
    make_cli([
        "fit", *configs(*chain),
        "--data.init_args.data_dir", str(tmp_path / "data"), "--data.init_args.batch_size", "16",
        "--model.net.init_args.hidden_sizes", "[16, 16]", "--trainer.max_epochs", "1",
        "--trainer.default_root_dir", str(tmp_path / "runs"),
        "--trainer.enable_progress_bar", "false", "--run.wandb", "false",
    ])  # fmt: skip
    name = Path(chain[-1]).stem
    (run_dir,) = sorted((tmp_path / "runs" / name).glob("version_*"))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 1 and 0 <= summary["test_acc"] <= 1


def test_adlif_recipe_builds_se_adlif_s_network(tmp_path, no_argv):
    make_synthetic_heidelberg(tmp_path, "SHD", num_samples={"train": 48, "test": 16})
    cli = make_cli([
        *configs("shd_dcls_free.yaml", "shd_adlif_d2.yaml"), "--data.init_args.data_dir",
        str(tmp_path), "--trainer.default_root_dir", str(tmp_path / "runs"),
        "--run.wandb", "false",
    ], run=False)  # fmt: skip
    net = cli.model.net
    assert net.hidden_sizes == [360, 360] and net.is_recurrent and net.delay_mode == "spatial"
    assert all(isinstance(block.neuron, AdaptiveLeaky) for block in net.hidden)
    assert all(block.neuron.raw.requires_grad for block in net.hidden)
    count = net.parameter_count()
    assert 440_000 < count.weights < 450_000 and count.other == 4 * 720
