"""Every recipe runs as its first lines say, builds its model, and changes what it claims to;
the 90 %-sparse recipes are their dense recipes plus rewiring, and one trains end to end."""

from __future__ import annotations

import json
import sys

import pytest

from lightning_modules.cli import make_cli
from lightning_modules.data.synthetic import make_synthetic_heidelberg
from spatial_layers import SpatialDelay, count_parameters
from tests.helpers.recipes import (
    RECIPES,
    callback_names,
    changed,
    cli_parser,
    config_args,
    merged,
    recipe_chain,
)
from tests.helpers.training import run_dirs

ALL_RECIPES = sorted(p.name for p in RECIPES.glob("*.yaml"))
EXPECTED = {
    "yinyang.yaml", "yinyang_small.yaml", "yinyang_dim_free.yaml", "yinyang_dim_0.yaml",
    "yinyang_dim_1.yaml", "yinyang_dim_2.yaml", "yinyang_dim_3.yaml",
    "shd_dcls_free.yaml", "shd_spatial_d2.yaml", "shd_spatial_d3.yaml", "ssc.yaml",
    "yinyang_2hidden.yaml", "yinyang_qat.yaml", "yinyang_sparse90.yaml",
    "yinyang_sparse90_dale.yaml", "yinyang_sparse90_free.yaml", "yinyang_sparse90_wiring.yaml",
    "shd_sparse90_d2.yaml", "shd_sparse90_d2_dale.yaml", "shd_sparse90_free.yaml",
}  # fmt: skip


@pytest.fixture(scope="module")
def heidelberg_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("heidelberg")
    make_synthetic_heidelberg(root, "SHD", num_samples={"train": 48, "test": 16})
    make_synthetic_heidelberg(root, "SSC", num_samples={"train": 70, "valid": 35, "test": 35})
    return root


@pytest.fixture(scope="module")
def parser(tmp_path_factory):
    return cli_parser(tmp_path_factory.mktemp("runs"))


def build(recipe, tmp_path, heidelberg_dir, *extra):
    args = [*config_args(recipe), "--trainer.default_root_dir", str(tmp_path)]
    args += ["--run.wandb", "false"]
    if recipe.startswith(("shd", "ssc")):
        args += ["--data.init_args.data_dir", str(heidelberg_dir)]
    return make_cli([*args, *extra], run=False)


def test_the_recipes_the_issue_lists_exist():
    assert set(ALL_RECIPES) >= EXPECTED


@pytest.mark.parametrize("recipe", ALL_RECIPES)
def test_a_delta_layers_on_its_parent_as_the_parent_runs(recipe):
    chain = recipe_chain(recipe)
    assert chain[-1] == RECIPES / recipe  # the recipe comes last: the run is named after it
    if len(chain) > 1:
        assert recipe_chain(chain[-2].name) == chain[:-1]


@pytest.mark.parametrize("recipe", ALL_RECIPES)
def test_recipe_parses_and_builds(recipe, tmp_path, heidelberg_dir, cli_argv):
    cli = build(recipe, tmp_path, heidelberg_dir)
    net = cli.model.net
    data = cli.datamodule
    assert (net.num_inputs, net.num_classes) == (data.num_inputs, data.num_classes)
    assert cli.model.hparams.num_steps == data.num_steps
    layers = [m for m in net.modules() if isinstance(m, SpatialDelay)]
    assert layers and count_parameters(net).total > 0
    assert cli.trainer.max_epochs >= 1
    assert cli.trainer.loggers[0].name == recipe.removesuffix(".yaml")  # the run name


@pytest.mark.parametrize(
    ("recipe", "delays", "dim"),
    [("yinyang_dim_free.yaml", "free", 0), ("yinyang_dim_0.yaml", "none", 0),
     ("yinyang_dim_1.yaml", "spatial", 1), ("yinyang_dim_2.yaml", "spatial", 2),
     ("yinyang_dim_3.yaml", "spatial", 3), ("yinyang.yaml", "spatial", 2)],
)  # fmt: skip
def test_dimension_sweep_differs_only_in_the_delays(
    recipe, delays, dim, tmp_path, cli_argv, parser
):
    cli = build(recipe, tmp_path, None)
    assert (cli.model.net.delay_mode, cli.model.net.dim) == (delays, dim)
    differs = changed(merged(parser, recipe), merged(parser, "yinyang.yaml"))
    assert differs <= {"model.net.init_args.delays", "model.net.init_args.dim"}


NET = "model.net.init_args."
QAT_CHANGES = {  # a grid twice as fine
    "model.eval_kernel": "round", NET + "max_delay": 20, NET + "beta": 0.95,
    "data.init_args.num_steps": 60, "data.init_args.t_max": 40,
}  # fmt: skip


@pytest.mark.parametrize(
    ("recipe", "changes", "added_callbacks"),
    [
        ("yinyang_qat.yaml", QAT_CHANGES, ["RoundDelays"]),
        ("yinyang_2hidden.yaml", {NET + "hidden_sizes": [128, 128]}, []),
        ("yinyang_small.yaml", {NET + "hidden_sizes": [60]}, []),
    ],
)
def test_yinyang_variants_change_only_what_they_say(recipe, changes, added_callbacks, parser):
    main, variant = merged(parser, "yinyang.yaml"), merged(parser, recipe)
    assert callback_names(variant) == callback_names(main) + added_callbacks
    kept = main["trainer.callbacks"]
    assert variant["trainer.callbacks"][: len(kept)] == kept
    assert changed(variant, main) == {*changes, *(["trainer.callbacks"] if added_callbacks else [])}
    assert {key: variant[key] for key in changes} == changes


def test_small_recipe_stays_within_the_spsnn_budget(tmp_path, cli_argv):
    cli = build("yinyang_small.yaml", tmp_path, None)
    assert count_parameters(cli.model.net).total <= 621


def test_shd_dcls_recipe_matches_the_published_architecture(tmp_path, heidelberg_dir, cli_argv):
    cli = build("shd_dcls_free.yaml", tmp_path, heidelberg_dir)
    hp, net = cli.model.hparams, cli.model.net
    assert net.num_inputs == 140 and net.hidden_sizes == [256, 256] and net.max_delay == 25
    assert (net.init_args["batch_norm"], net.init_args["dropout"]) == (True, 0.4)
    assert (hp.readout, hp.eval_kernel) == ("sum", "round")
    assert (hp.lr, hp.peak_lr, hp.scheduler) == (1e-3, 5e-3, "one_cycle")
    assert (hp.position_lr, hp.position_scheduler) == (0.1, "cosine")
    assert cli.datamodule.batch_size == 256 and cli.trainer.max_epochs == 150
    count = count_parameters(net)
    assert count.weights == count.free_delays == 140 * 256 + 256 * 256 + 256 * 20
    assert 0.2e6 < count.total < 0.22e6  # DCLS-delays: ~0.2M parameters
    spatial = build("shd_spatial_d2.yaml", tmp_path, heidelberg_dir).model.net
    assert count_parameters(spatial).coordinates == (140 + 256 + 256 + 20) * 2


@pytest.mark.slow
def test_shd_recipe_trains_end_to_end_on_tiny_files(tmp_path, heidelberg_dir, cli_argv):
    """The DCLS-delays pipeline (BN, dropout, one-cycle, annealing, rounded eval) runs."""
    make_cli([
        "fit", *config_args("shd_dcls_free.yaml"),
        "--data.init_args.data_dir", str(heidelberg_dir), "--data.init_args.batch_size", "16",
        "--model.net.init_args.hidden_sizes", "[16, 16]", "--trainer.max_epochs", "2",
        "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false",
        "--run.wandb", "false",
    ])  # fmt: skip
    (run_dir,) = run_dirs(tmp_path, "shd_dcls_free")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["delays"] == "free" and summary["epochs"] == 2
    assert (run_dir / "delays.png").exists() and not (run_dir / "layout.png").exists()


# --- the 90 %-sparse recipes ---------------------------------------------------------------------

REWIRING = {"DeepR", "RigL", "Dale"}

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
