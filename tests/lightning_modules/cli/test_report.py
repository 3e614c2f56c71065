"""spsnn report: medians and spreads over seeds, grouping, refusal of mixed groups."""

from __future__ import annotations

import json

import pytest

from lightning_modules.cli import main as spsnn
from lightning_modules.cli.report import find_summaries, group_rows, markdown_table


def write_run(root, name, seed, test_acc, *, n_params=100, epoch="last"):
    run_dir = root / f"seed{seed}" / name / "version_0"
    run_dir.mkdir(parents=True)
    summary = {
        "run_name": name,
        "seed": seed,
        "test_acc": test_acc,
        "val_acc": 0.9 if test_acc is None else test_acc - 0.01,
        "n_params": n_params,
        "n_weights": n_params - 20,
        "n_coordinates": 20,
        "n_free_delays": 0,
        "sparsity": 0.0,
        "epochs": 3,
        "wall_time_s": 10.0 * seed,
        "test_acc_epoch": epoch,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))


def test_median_and_spread_per_run_name(tmp_path):
    for seed, acc in ((1, 0.97), (2, 0.99), (3, 0.98)):
        write_run(tmp_path, "dim_2", seed, acc)
    write_run(tmp_path, "dim_0", 1, 0.90, n_params=80)
    rows = {row.run: row for row in group_rows(find_summaries([tmp_path]))}
    assert rows["dim_2"].runs == 3 and rows["dim_2"].seeds == (1, 2, 3)
    assert rows["dim_2"].test_median == pytest.approx(0.98)
    assert (rows["dim_2"].test_min, rows["dim_2"].test_max) == (0.97, 0.99)
    assert rows["dim_2"].wall_time_median_s == 20.0
    assert rows["dim_0"].runs == 1 and rows["dim_0"].n_params == 80
    table = markdown_table(list(rows.values())).splitlines()
    assert len(table) == 4
    assert any(line.startswith("| dim_2 | 3 | 1, 2, 3 | 98.00 | 97.00 - 99.00 |") for line in table)


@pytest.mark.parametrize(
    "second", [{"n_params": 101}, {"epoch": "best_val"}], ids=["params", "epoch"]
)
def test_runs_that_do_not_belong_together_are_refused(tmp_path, second):
    write_run(tmp_path, "dim_2", 1, 0.97)
    write_run(tmp_path, "dim_2", 2, 0.98, **second)
    with pytest.raises(ValueError, match="dim_2"):
        group_rows(find_summaries([tmp_path]))


def test_a_run_without_test_accuracy_is_refused(tmp_path):
    write_run(tmp_path, "dim_2", 1, None)  # a fit that no test followed
    with pytest.raises(ValueError, match="no test accuracy"):
        find_summaries([tmp_path])


def test_cli_writes_json_and_names_a_bad_summary(tmp_path, capsys):
    write_run(tmp_path, "dim_2", 1, 0.97)
    spsnn(["report", str(tmp_path), "--json", str(tmp_path / "rows.json")])
    assert "| dim_2 |" in capsys.readouterr().out
    assert json.loads((tmp_path / "rows.json").read_text())[0]["test_median"] == 0.97
    broken = tmp_path / "broken" / "summary.json"
    broken.parent.mkdir()
    broken.write_text(json.dumps({"run_name": "x"}))
    with pytest.raises(SystemExit):
        spsnn(["report", str(broken)])
    assert "lacks the keys" in capsys.readouterr().err


def test_runs_of_one_name_that_ran_different_networks_are_refused(tmp_path):
    for seed, dim in ((1, 2), (2, 3)):
        write_run(tmp_path, "dim_3", seed, 0.9)
        path = tmp_path / f"seed{seed}" / "dim_3" / "version_0" / "summary.json"
        summary = json.loads(path.read_text())
        path.write_text(json.dumps(summary | {"net": {"init_args": {"dim": dim}}}))
    with pytest.raises(ValueError, match="'dim_3' ran different networks"):
        group_rows(find_summaries([tmp_path]))


def test_unreadable_summaries_and_output_paths_are_named(tmp_path, capsys):
    broken = tmp_path / "run" / "summary.json"
    broken.parent.mkdir()
    broken.write_text("{not json")
    with pytest.raises(SystemExit):
        spsnn(["report", str(tmp_path)])
    assert f"{broken}: not a readable summary.json" in capsys.readouterr().err
    write_run(tmp_path, "dim_2", 1, 0.97)
    with pytest.raises(SystemExit):
        spsnn(["report", str(tmp_path / "seed1"), "--json", str(tmp_path)])
    assert f"--json {tmp_path}: a directory" in capsys.readouterr().err


def test_runs_that_did_not_validate_show_no_validation_median(tmp_path, capsys):
    for seed in (1, 2):
        write_run(tmp_path, "dim_2", seed, 0.9)
    write_run(tmp_path, "no_val", 1, 0.8)
    for seed, name in ((1, "dim_2"), (1, "no_val")):  # limit_val_batches: 0, or max_steps
        path = tmp_path / f"seed{seed}" / name / "version_0" / "summary.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {"val_acc": None}))
    spsnn(["report", str(tmp_path)])
    rows = capsys.readouterr().out.splitlines()[2:]
    assert rows[0].startswith("| dim_2 | 2 | 1, 2 | 90.00 | 90.00 - 90.00 | 89.00 (1 of 2) |")
    assert rows[1].startswith("| no_val | 1 | 1 | 80.00 | 80.00 - 80.00 | - |")
