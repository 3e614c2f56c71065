"""``spsnn export``: train a tiny Yin-Yang model, export its checkpoint, evaluate the NIR import
(and, with ``--target loihi2``, write the chip's report into the run folder)."""

from __future__ import annotations

import json
import sys

import nir
import pytest

import lightning_modules.cli as spsnn_cli
from lightning_modules.cli import main, make_cli
from tests.helpers.probes import refusal_line
from tests.helpers.training import tiny_yinyang_fit


@pytest.fixture
def last_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["spsnn"])
    options = [
        "--model.net.init_args.batch_norm", "true", "--model.net.init_args.bias", "true",
    ]  # fmt: skip
    make_cli(tiny_yinyang_fit(tmp_path / "runs", *options))
    (path,) = (tmp_path / "runs" / "tiny").glob("version_*/checkpoints/last.ckpt")
    return path


def test_export_and_evaluate_a_trained_checkpoint(last_checkpoint, tmp_path, capsys):
    out = tmp_path / "tiny.nir"
    main(["export", str(last_checkpoint), str(out), "--weight-bits", "8", "--evaluate"])
    printed = capsys.readouterr().out
    graph = nir.read(out)
    assert f"wrote {out}: {len(graph.nodes)} nodes" in printed and "8-bit weights" in printed
    assert "NIR import" in printed and "0 / " in printed
    result = json.loads((tmp_path / "tiny.evaluation.json").read_text())
    assert result["samples"] == 24 and result["split"] == "test"
    assert result["training_kernel"] == "gauss"
    assert set(result["accuracy"]) == {"float", "integer_delays", "nir"}
    assert all(0.0 <= value <= 1.0 for value in result["accuracy"].values())
    assert result["mismatches"]["spikes"] == 0 and result["mismatches"]["membrane"] == 0
    assert result["mismatches"]["spike_elements"] == 24 * 12 * 8
    assert int(graph.metadata["weight_bits"]) == 8 and graph.metadata["readout"] == "max"
    assert result["graph"]["delay_nodes"] == sum(
        isinstance(n, nir.Delay) for n in graph.nodes.values()
    )


def test_export_refuses_delays_over_the_limit(last_checkpoint, tmp_path, capsys):
    out = tmp_path / "limited.nir"
    with pytest.raises(SystemExit):
        main(["export", str(last_checkpoint), str(out), "--max-delay", "0"])
    assert "synapses have delays above max_delay=0" in capsys.readouterr().err
    assert not out.exists()
    main(["export", str(last_checkpoint), str(out), "--max-delay", "0", "--clip-delays"])
    assert "delays clipped" in capsys.readouterr().out
    assert not any(isinstance(n, nir.Delay) for n in nir.read(out).nodes.values())
    with pytest.raises(SystemExit):
        main(["export", str(last_checkpoint), str(out), "--clip-delays"])
    assert "--clip-delays needs --max-delay" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(tmp_path / "missing.ckpt"), str(tmp_path / "new.nir")])
    assert "missing.ckpt: no such file" in capsys.readouterr().err


def test_other_subcommands_still_go_to_lightning_cli(monkeypatch):
    calls = []
    monkeypatch.setattr(spsnn_cli.lightning, "make_cli", calls.append)
    main(["fit", "--config", "x.yaml"])
    monkeypatch.setattr(sys, "argv", ["spsnn", "test", "--ckpt_path", "y"])
    main()
    assert calls == [["fit", "--config", "x.yaml"], None]


def test_bad_files_and_paths_are_one_line_naming_them(tmp_path, capsys):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(b"PK\x03\x04 not a whole zip archive")
    cases = [
        ([str(truncated), str(tmp_path / "out.nir")], f"{truncated}: not a readable checkpoint"),
        ([str(tmp_path), str(tmp_path / "out.nir")], f"{tmp_path}: a directory, not a checkpoint"),
        ([str(truncated), str(tmp_path)], f"{tmp_path}: a directory; give the file to write"),
        ([str(truncated), str(tmp_path / "no" / "o.nir")], "its folder"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(["export", *argv])
        assert message in refusal_line(capsys, exit_info)


def test_cli_target_writes_its_report_beside_the_graph(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["spsnn"])
    options = [
        "--data.init_args.rounding", "linear",
        "--trainer.callbacks+", "lightning_modules.callbacks.HardwareQAT",
        "--trainer.callbacks.after", "0.5", "--trainer.max_epochs", "2",
    ]  # fmt: skip
    make_cli(tiny_yinyang_fit(tmp_path / "runs", *options))
    (checkpoint,) = (tmp_path / "runs" / "tiny").glob("version_*/checkpoints/last.ckpt")
    out = tmp_path / "tiny.nir"
    main(["export", str(checkpoint), str(out), "--target", "loihi2", "--evaluate"])
    printed = capsys.readouterr().out
    assert "Loihi 2 profile: layers" in printed and "fits one Loihi 2 chip" in printed
    assert "0 / 2304 spike mismatches" in printed  # 24 samples x 12 steps x 8 neurons
    report = json.loads((tmp_path / "tiny.loihi2_report.json").read_text())
    assert (tmp_path / "tiny.loihi2_report.txt").read_text().startswith("Loihi 2 profile")
    assert not (checkpoint.parent.parent / "loihi2_report.json").exists()  # the run untouched
    assert [row["name"] for row in report["layers"]] == ["layers_0", "layers_1"]
    result = json.loads((tmp_path / "tiny.evaluation.json").read_text())
    assert result["target"] == "loihi2" and result["mismatches"]["membrane"] == 0
    with pytest.raises(SystemExit):
        main(["export", str(checkpoint), str(out), "--target", "loihi2", "--weight-bits", "4",
              "--force"])  # fmt: skip
    assert "8-bit weights" in capsys.readouterr().err
