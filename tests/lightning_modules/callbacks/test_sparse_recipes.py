"""The 90 %-sparse recipes: each is its dense recipe plus rewiring, and one trains end to end."""

from __future__ import annotations

import json
import sys

import pytest
from recipe_testing import RECIPES, callback_names, changed, cli_parser, config_args, merged

from lightning_modules.cli import make_cli

REWIRING = {"DeepR", "RigL", "Dale"}
NET = "model.net.init_args."

# sparse recipe -> (dense recipe it extends, what else it may change, with Dale)
SPARSE_RECIPES = {
    "yinyang_sparse90.yaml": ("yinyang_2hidden.yaml", {}, False),
    "yinyang_sparse90_dale.yaml": ("yinyang_2hidden.yaml", {}, True),
    "yinyang_sparse90_free.yaml": ("yinyang_2hidden.yaml", {NET + "delays": "free"}, False),
    "yinyang_sparse90_wiring.yaml": ("yinyang_2hidden.yaml", {"model.wiring_cost": 3.0e-4}, False),
    "shd_sparse90_d2.yaml": ("shd_spatial_d2.yaml", {}, False),
    "shd_sparse90_d2_dale.yaml": ("shd_spatial_d2.yaml", {}, True),
    "shd_sparse90_free.yaml": ("shd_dcls_free.yaml", {}, False),
}


@pytest.fixture(scope="module")
def parser(tmp_path_factory):
    return cli_parser(tmp_path_factory.mktemp("runs"))


def test_every_sparse_recipe_is_listed():
    assert {p.name for p in RECIPES.glob("*sparse*.yaml")} == set(SPARSE_RECIPES)


@pytest.mark.parametrize("recipe", sorted(SPARSE_RECIPES))
def test_sparse_recipe_is_its_dense_recipe_plus_rewiring(recipe, parser):
    base_name, changes, dale = SPARSE_RECIPES[recipe]
    sparse, base = merged(parser, recipe), merged(parser, base_name)
    callbacks = sparse["trainer.callbacks"]
    kept = [c for c in callbacks if c["class_path"].rsplit(".", 1)[1] not in REWIRING]
    assert kept == base["trainer.callbacks"]
    rewiring = {c["class_path"].rsplit(".", 1)[1]: c["init_args"] for c in callbacks}
    assert rewiring["DeepR"]["sparsity"] == rewiring["RigL"]["sparsity"] == 0.9
    distributions = {rewiring[name]["distribution"] for name in ("DeepR", "RigL")}
    assert distributions == {"erk" if recipe.startswith("yinyang") else "uniform"}
    assert ("Dale" in callback_names(sparse)) == dale
    assert changed(sparse, base) == {"trainer.callbacks", *changes}
    assert {key: sparse[key] for key in changes} == changes


@pytest.mark.slow
def test_yinyang_sparse_recipe_trains_at_exactly_90_percent(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["spsnn"])
    make_cli([
        "fit", *config_args("yinyang_sparse90_dale.yaml"),
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
