"""Every recipe parses, builds its model, and says what it claims to."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import RECIPES, run_dirs

from lightning_modules.cli import make_cli
from lightning_modules.data.synthetic import make_synthetic_heidelberg
from spatial_layers import SpatialDelay, count_parameters

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


def flat_model(config: dict) -> dict:
    """A recipe's model section with the network's init_args merged in, as one dict."""
    model = dict(config["model"])
    net = model.pop("net")
    return {**model, **net["init_args"], "net": net["class_path"]}


def build(recipe, tmp_path, heidelberg_dir, *extra):
    args = ["--config", str(RECIPES / recipe), "--trainer.default_root_dir", str(tmp_path)]
    args += ["--run.wandb", "false"]
    if recipe.startswith(("shd", "ssc")):
        args += ["--data.init_args.data_dir", str(heidelberg_dir)]
    return make_cli([*args, *extra], run=False)


def test_the_recipes_the_issue_lists_exist():
    assert set(ALL_RECIPES) >= EXPECTED


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


@pytest.mark.parametrize(
    ("recipe", "delays", "dim"),
    [("yinyang_dim_free.yaml", "free", 0), ("yinyang_dim_0.yaml", "none", 0),
     ("yinyang_dim_1.yaml", "spatial", 1), ("yinyang_dim_2.yaml", "spatial", 2),
     ("yinyang_dim_3.yaml", "spatial", 3), ("yinyang.yaml", "spatial", 2)],
)  # fmt: skip
def test_dimension_sweep_differs_only_in_the_delays(recipe, delays, dim, tmp_path, cli_argv):
    cli = build(recipe, tmp_path, None)
    assert (cli.model.net.delay_mode, cli.model.net.dim) == (delays, dim)
    main = yaml.safe_load((RECIPES / "yinyang.yaml").read_text())
    sweep = yaml.safe_load((RECIPES / recipe).read_text())
    main["model"], sweep["model"] = flat_model(main), flat_model(sweep)
    for section in ("model", "data", "trainer"):
        strip = {"delays", "dim"} if section == "model" else set()
        ours = {k: v for k, v in sweep[section].items() if k not in strip}
        theirs = {k: v for k, v in main[section].items() if k not in strip}
        assert ours == theirs, section


QAT_MODEL = {"eval_kernel": "round", "max_delay": 20, "beta": 0.95}  # a grid twice as fine
QAT_DATA = {"num_steps": 60, "t_max": 40}


@pytest.mark.parametrize(
    ("recipe", "model_changes", "data_changes", "added_callbacks"),
    [
        ("yinyang_qat.yaml", QAT_MODEL, QAT_DATA, ["RoundDelays"]),
        ("yinyang_2hidden.yaml", {"hidden_sizes": [128, 128]}, {}, []),
    ],
)
def test_yinyang_variants_change_only_what_they_say(
    recipe, model_changes, data_changes, added_callbacks
):
    main = yaml.safe_load((RECIPES / "yinyang.yaml").read_text())
    variant = yaml.safe_load((RECIPES / recipe).read_text())
    names = [c["class_path"].rsplit(".", 1)[1] for c in variant["trainer"].pop("callbacks")]
    main_names = [c["class_path"].rsplit(".", 1)[1] for c in main["trainer"].pop("callbacks")]
    assert names == main_names + added_callbacks
    assert flat_model(variant) == {**flat_model(main), **model_changes}
    del variant["model"], main["model"]
    data = variant["data"]["init_args"]
    assert data == {**main["data"]["init_args"], **data_changes}
    main["data"]["init_args"] = data
    assert variant == main


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
        "fit", "--config", str(RECIPES / "shd_dcls_free.yaml"),
        "--data.init_args.data_dir", str(heidelberg_dir), "--data.init_args.batch_size", "16",
        "--model.net.init_args.hidden_sizes", "[16, 16]", "--trainer.max_epochs", "2",
        "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false",
        "--run.wandb", "false",
    ])  # fmt: skip
    (run_dir,) = run_dirs(tmp_path, "shd_dcls_free")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["delays"] == "free" and summary["epochs"] == 2
    assert (run_dir / "delays.png").exists() and not (run_dir / "layout.png").exists()
