"""``spsnn analyze``: a trained run's analysis.json, figures and W&B log; free delays; errors;
and the analysis columns of ``spsnn report``."""

from __future__ import annotations

import json
import sys

import pytest

from lightning_modules.cli import main as spsnn
from lightning_modules.cli import make_cli, overview
from lightning_modules.cli.analyze import wandb_run_id
from lightning_modules.cli.report import find_summaries, group_rows, markdown_table
from tests.helpers.training import tiny_yinyang_fit

FIGURES = {
    "analysis_communities.png", "analysis_preferred_class.png", "analysis_adjacency.png",
    "analysis_weight_distance.png", "analysis_delays.png", "analysis_nulls.png",
}  # fmt: skip


@pytest.fixture
def train(tmp_path, monkeypatch):
    """Trains a tiny run and returns its folder (W&B offline, files in the run folder)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(sys, "argv", ["spsnn"])

    def run(*extra: str):
        make_cli(tiny_yinyang_fit(tmp_path / "runs", *extra, hidden=12, test_size=30, wandb=True))
        return max((tmp_path / "runs" / "tiny").glob("version_*"))

    return run


def test_a_trained_run_gets_analysis_json_figures_and_its_wandb_run(train, capsys):
    run_dir = train()
    run_id = wandb_run_id(run_dir)
    assert run_id is not None
    spsnn(["analyze", str(run_dir), "--nulls", "6"])
    printed = capsys.readouterr().out
    assert f"wrote {run_dir / 'analysis.json'}" in printed and "modularity" in printed
    result = json.loads((run_dir / "analysis.json").read_text())
    assert result["settings"]["nulls"] == 6 and result["settings"]["split"] == "test"
    assert result["settings"]["checkpoint"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert result["function"]["samples"] == 30
    assert 0.0 <= result["function"]["accuracy"] <= 1.0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert result["function"]["accuracy"] == pytest.approx(summary["test_acc"])
    assert result["summary"]["wiring_cost"] == pytest.approx(summary["analysis"]["wiring_cost"])
    for measure in ("modularity", "path_length", "global_efficiency"):
        assert len(result["graph"][measure]["nulls"]["strength"]["values"]) == 6
    assert result["space"]["ridge_r2"]["value"] is not None
    assert set(result["figures"]) == FIGURES
    assert all((run_dir / name).stat().st_size > 0 for name in FIGURES)
    # The run's W&B run is resumed: a second offline folder with the same id.
    folders = [p for p in (run_dir / "wandb").iterdir() if p.name.endswith(f"-{run_id}")]
    assert len(folders) == 2 and f"logged to W&B run {run_id}" in printed


def test_free_delays_and_a_checkpoint_path_with_options(train, tmp_path, capsys):
    run_dir = train("--model.net.init_args.delays", "free", "--run.wandb", "false")
    out = tmp_path / "elsewhere"
    out.mkdir()
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    spsnn([
        "analyze", str(checkpoint), "--nulls", "3", "--split", "val", "--null-models",
        "weight_shuffle", "--no-modularity-nulls", "--out", str(out), "--seed", "4",
    ])  # fmt: skip
    result = json.loads((out / "analysis.json").read_text())
    assert result["settings"]["split"] == "val" and result["function"]["samples"] == 16
    assert result["settings"]["null_models"] == ["weight_shuffle"]
    assert "nulls" not in result["graph"]["modularity"]
    assert result["space"]["moran_i"]["unavailable"].startswith("needs positions")
    assert result["wiring"]["length_source"] == "delays"
    # No coordinates: no layouts; the rest are drawn.
    assert set(result["figures"]) == FIGURES - {
        "analysis_communities.png",
        "analysis_preferred_class.png",
    }
    assert not (run_dir / "analysis.json").exists()
    assert "W&B" not in capsys.readouterr().out


def test_errors_are_one_line(tmp_path, capsys):
    cases = [
        ([str(tmp_path / "missing")], "no such run folder or checkpoint"),
        ([str(tmp_path)], "has no checkpoints/last.ckpt"),
        ([str(tmp_path), "--nulls", "-1"], "--nulls must be >= 0"),
    ]
    (tmp_path / "runs" / "version_3" / "checkpoints").mkdir(parents=True)
    (tmp_path / "runs" / "version_3" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    cases.append(([str(tmp_path / "runs")], "holds several runs: give one run folder"))
    broken = tmp_path / "runs" / "version_3" / "checkpoints" / "last.ckpt"
    cases.append(([str(broken)], "not a readable checkpoint"))
    # Refused at the door, before the checkpoint is read (not after the whole analysis).
    cases.append(([str(broken), "--wandb", "yes"], "--wandb yes: " + str(broken.parent.parent)))
    # --out must be a folder: a file is named as a file, a missing folder as missing
    cases.append(([str(broken), "--out", str(broken)], f"--out {broken} is a file: give the"))
    cases.append(([str(broken), "--out", str(tmp_path / "absent")], "absent: no such folder"))
    for argv, message in cases:
        with pytest.raises(SystemExit) as stopped:
            spsnn(["analyze", *argv])
        assert stopped.value.code == 2
        err = capsys.readouterr().err
        assert message in err, err
        assert len([line for line in err.splitlines() if "error" in line]) == 1
    assert "analyze" in overview()


@pytest.mark.parametrize(
    ("options", "drawn"),
    [
        ({"recurrent": True, "hidden_sizes": [12, 8]}, FIGURES),
        ({"dim": 1}, FIGURES),
        ({"delays": "none", "max_delay": 0}, {"analysis_adjacency.png", "analysis_delays.png"}),
    ],
    ids=["recurrent", "1-d", "no-delays"],
)
def test_figures_of_other_networks(tmp_path, options, drawn):
    import torch

    from lightning_modules.analysis_figures import save_analysis_figures
    from spatial_layers import SpatialSNN, analysis

    torch.manual_seed(0)
    hidden = options.pop("hidden_sizes", [16])
    net = SpatialSNN(5, 3, hidden, **({"max_delay": 4} | options))
    x, y = (torch.rand(24, 10, 5) < 0.3).float(), torch.arange(24) % 3
    activity = analysis.record_activity(net, [(x, y)])
    result = analysis.analyze(net, activity, nulls=3)
    tuning = analysis.function.class_rates(activity.rates, activity.labels, 3)
    written = {p.name for p in save_analysis_figures(net, result, tuning, tmp_path)}
    assert drawn <= written <= FIGURES


def write_run(root, seed: int, *, analysis: dict | None = None, callback: dict | None = None):
    run_dir = root / f"s{seed}" / "dim_2" / "version_0"
    run_dir.mkdir(parents=True)
    summary = {
        "run_name": "dim_2", "seed": seed, "test_acc": 0.9, "val_acc": 0.9, "n_params": 10,
        "n_weights": 8, "n_coordinates": 2, "n_free_delays": 0, "sparsity": 0.0, "epochs": 1,
        "wall_time_s": 1.0, "test_acc_epoch": "last",
    }  # fmt: skip
    if callback is not None:
        summary["analysis"] = callback
    (run_dir / "summary.json").write_text(json.dumps(summary))
    if analysis is not None:
        (run_dir / "analysis.json").write_text(json.dumps({"summary": analysis}))


def test_report_shows_the_analysis_columns_when_runs_have_them(tmp_path):
    write_run(tmp_path, 1, analysis={"wiring_cost": 10.0, "modularity": 0.2, "small_world": 1.5})
    write_run(tmp_path, 2, analysis={"wiring_cost": 30.0, "modularity": 0.4, "small_world": None})
    write_run(tmp_path, 3, callback={"wiring_cost": 20.0, "modularity": 0.3})
    (row,) = group_rows(find_summaries([tmp_path]))
    assert row.layout == {
        "wiring_cost": (20.0, 3), "modularity": (0.3, 3), "small_world": (1.5, 1)
    }  # fmt: skip
    header, _, line = markdown_table([row]).splitlines()
    assert "| min - max (%) | wiring cost | modularity | small-world | val acc" in header
    assert "| 20.0 | 0.300 | 1.500 (1 of 3) |" in line
    (tmp_path / "s1" / "dim_2" / "version_0" / "analysis.json").write_text("{")
    with pytest.raises(ValueError, match=r"not a readable analysis\.json"):
        find_summaries([tmp_path])


def test_report_skips_the_copies_wandb_keeps_in_a_run_folder(tmp_path):
    write_run(tmp_path, 1, analysis={"wiring_cost": 10.0})
    run_dir = tmp_path / "s1" / "dim_2" / "version_0"
    copy = run_dir / "wandb" / "offline-run-20260101_000000-abc" / "files"
    copy.mkdir(parents=True)
    for name in ("summary.json", "analysis.json"):
        (copy / name).write_text((run_dir / name).read_text())
    (row,) = group_rows(find_summaries([tmp_path]))
    assert row.runs == 1
    assert len(find_summaries([copy / "summary.json"])) == 1  # named on purpose: read


def test_report_without_analyses_keeps_its_columns(tmp_path):
    write_run(tmp_path, 1)
    header = markdown_table(group_rows(find_summaries([tmp_path]))).splitlines()[0]
    assert "modularity" not in header and "wiring cost" not in header
