"""The benchmark scripts still run (tiny sizes); their numbers are measured elsewhere, not here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *args: str) -> None:
    subprocess.run([sys.executable, str(BENCHMARKS / name), *args], check=True, timeout=300)


def test_rewiring_overhead_runs_every_setup(tmp_path):
    out = tmp_path / "rewiring.json"
    tiny = ["--inputs", "6", "--hidden", "8", "--classes", "3", "--max-delay", "3"]
    tiny += ["--steps-t", "5", "--batch-size", "2", "--warmup", "1", "--steps", "1"]
    run_script("rewiring_overhead.py", *tiny, "--out", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 6 and rows[0]["setup"].startswith("static")
    assert all(row["step_median_ms"] > 0 for row in rows)


def test_train_step_runs_every_model(tmp_path):
    out = tmp_path / "train_step.json"
    quick = ["--quick", "--configs", "shd", "--warmup", "0", "--repeats", "1"]
    run_script("train_step.py", *quick, "--no-flops", "--no-stream", "--out", str(out))
    models = json.loads(out.read_text())["configs"]["shd"]["models"]
    assert set(models) == {"spatial", "free", "dcls"}
    assert all("error" not in result and result["time_s"] > 0 for result in models.values())


def test_memory_trace_counts_every_model(tmp_path):
    out = tmp_path / "memory.json"
    run_script("memory_trace.py", "--quick", "--configs", "shd", "long-long", "--out", str(out))
    configs = json.loads(out.read_text())["configs"]
    for rows in configs.values():
        assert set(rows) == {"spatial", "free", "dcls"}
        for row in rows.values():
            assert 0 < row["saved_after_forward_bytes"] <= row["forward_peak_bytes"]
            assert row["forward_peak_bytes"] <= row["peak_bytes"]
    # A T=60, B=2 step of 5-32-32-5 holds at least its spikes and membranes, far below 1 GiB.
    assert 2 * 60 * 2 * 32 * 4 < configs["long-long"]["spatial"]["peak_bytes"] < 2**30


def test_shd_epoch_runs_end_to_end_on_small_files(tmp_path):
    out = tmp_path / "shd_epoch.json"
    run_script(
        "shd_epoch.py", "--data-dir", str(tmp_path / "data"), "--samples", "64", "16",
        "--events", "200", "--train-step-ms", "100", "--accelerator", "cpu", "--out", str(out),
    )  # fmt: skip
    report = json.loads(out.read_text())
    # 64 training samples minus the speaker-held-out validation ones, in batches of 256.
    assert report["train_batches"] == 1 and 0 < report["train_samples"] < 64
    assert report["samples_per_s"] > 0 and report["measured_over_predicted"] > 0
