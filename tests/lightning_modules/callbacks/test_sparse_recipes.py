"""The 90 %-sparse recipes: each is its dense recipe plus rewiring, and one trains end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from lightning_modules.cli import make_cli

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
REWIRING = {
    "lightning_modules.callbacks.DeepR",
    "lightning_modules.callbacks.RigL",
    "lightning_modules.callbacks.Dale",
}

# sparse recipe -> (dense recipe it extends, model keys it may add or change, with Dale)
SPARSE_RECIPES = {
    "yinyang_sparse90.yaml": ("yinyang_2hidden.yaml", {}, False),
    "yinyang_sparse90_dale.yaml": ("yinyang_2hidden.yaml", {}, True),
    "yinyang_sparse90_free.yaml": ("yinyang_2hidden.yaml", {"delays": "free"}, False),
    "yinyang_sparse90_wiring.yaml": ("yinyang_2hidden.yaml", {"wiring_cost": 3.0e-4}, False),
    "shd_sparse90_d2.yaml": ("shd_spatial_d2.yaml", {}, False),
    "shd_sparse90_d2_dale.yaml": ("shd_spatial_d2.yaml", {}, True),
    "shd_sparse90_free.yaml": ("shd_dcls_free.yaml", {}, False),
}


def flat_model(config: dict) -> dict:
    """A recipe's model section with the network's init_args merged in, as one dict."""
    model = dict(config["model"])
    net = model.pop("net")
    return {**model, **net["init_args"], "net": net["class_path"]}


def load(name: str) -> dict:
    return yaml.safe_load((RECIPES / name).read_text())


def test_every_sparse_recipe_is_listed():
    assert {p.name for p in RECIPES.glob("*sparse*.yaml")} == set(SPARSE_RECIPES)


@pytest.mark.parametrize("recipe", sorted(SPARSE_RECIPES))
def test_sparse_recipe_is_its_dense_recipe_plus_rewiring(recipe):
    base_name, model_changes, dale = SPARSE_RECIPES[recipe]
    sparse, base = load(recipe), load(base_name)
    callbacks = sparse["trainer"].pop("callbacks")
    kept = [c for c in callbacks if c["class_path"] not in REWIRING]
    assert kept == base["trainer"].pop("callbacks")
    rewiring = {c["class_path"].rsplit(".", 1)[1]: c.get("init_args", {}) for c in callbacks}
    assert rewiring["DeepR"]["sparsity"] == rewiring["RigL"]["sparsity"] == 0.9
    distributions = {rewiring[name].get("distribution", "uniform") for name in ("DeepR", "RigL")}
    assert distributions == {"erk" if recipe.startswith("yinyang") else "uniform"}
    assert ("Dale" in rewiring) == dale
    expected = {**flat_model(base), **model_changes}
    if model_changes.get("delays") == "free":
        del expected["dim"]  # no coordinates in free mode
    assert flat_model(sparse) == expected
    for section in set(sparse) | set(base):
        if section != "model":
            assert sparse.get(section) == base.get(section), section


@pytest.mark.slow
def test_yinyang_sparse_recipe_trains_at_exactly_90_percent(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["spsnn"])
    make_cli([
        "fit", "--config", str(RECIPES / "yinyang_sparse90_dale.yaml"),
        "--data.init_args.train_size", "64", "--data.init_args.val_size", "32",
        "--data.init_args.test_size", "32", "--model.net.init_args.hidden_sizes", "[20, 20]",
        "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(tmp_path),
        "--trainer.enable_progress_bar", "false", "--run.wandb", "false",
    ])  # fmt: skip
    (summary_path,) = (tmp_path / "yinyang_sparse90_dale").glob("version_*/summary.json")
    summary = json.loads(summary_path.read_text())
    layer_sizes = [5 * 20, 20 * 20, 20 * 3]  # (bias + 4 inputs) x hidden, hidden, classes
    assert summary["n_weights"] == round(0.1 * sum(layer_sizes))  # ERK: 90 % of all synapses
    assert summary["sparsity"] == pytest.approx(1 - summary["n_weights"] / sum(layer_sizes))
    assert (summary_path.parent / "layout.png").exists()
