"""``spsnn export``: train a tiny Yin-Yang model, export its checkpoint, evaluate the NIR import.

(Named test_export_cli.py: tests/lightning_modules/test_cli.py already owns the basename.)
"""

from __future__ import annotations

import json
import sys

import nir
import pytest
from lm_test_probes import refusal_line, tiny_yinyang_fit

import lightning_modules.cli as spsnn_cli
from lightning_modules.cli import main, make_cli


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
    result = json.loads(out.with_suffix(".json").read_text())
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
        main(["export", str(tmp_path / "missing.ckpt"), str(out)])
    assert "missing.ckpt: no such file" in capsys.readouterr().err


def test_other_subcommands_still_go_to_lightning_cli(monkeypatch):
    calls = []
    monkeypatch.setattr(spsnn_cli, "make_cli", calls.append)
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
