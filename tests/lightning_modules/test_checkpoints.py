"""Checkpoint files as spsnn reads them: one line per bad file, hyperparameter differences."""

from __future__ import annotations

import pytest
import torch

from lightning_modules.checkpoints import (
    CheckpointFileError,
    checkpoint_hparams,
    hparams_differences,
    read_checkpoint,
)

#: name -> (how to make the file, what the message must say)
BAD_FILES = {
    "missing": (lambda path: None, "no such file"),
    "directory": (lambda path: path.mkdir(), "a directory, not a checkpoint file"),
    "empty": (lambda path: path.write_bytes(b""), "an empty file (0 bytes)"),
    "truncated": (
        lambda path: (
            torch.save({"state_dict": {"w": torch.ones(100)}}, path)
            or path.write_bytes(path.read_bytes()[:300])
        ),
        "not a readable checkpoint (truncated, or not written by torch.save; RuntimeError",
    ),
    "text": (lambda path: path.write_text("model: 3\n"), "not a readable checkpoint"),
    "tensor": (
        lambda path: torch.save(torch.ones(3), path),
        "not a SpikingClassifier checkpoint",
    ),
    "no_hparams": (
        lambda path: torch.save({"state_dict": {}}, path),
        "not a SpikingClassifier checkpoint",
    ),
}


def bad_checkpoint(tmp_path, kind: str):
    make, message = BAD_FILES[kind]
    path = tmp_path / f"{kind}.ckpt"
    make(path)
    return path, message


@pytest.mark.parametrize("kind", BAD_FILES)
def test_every_bad_file_is_one_line_naming_it(tmp_path, kind):
    path, message = bad_checkpoint(tmp_path, kind)
    with pytest.raises(CheckpointFileError) as error:
        read_checkpoint(path)
    text = str(error.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_a_checkpoint_reads_as_plain_data(tmp_path):
    path = tmp_path / "ok.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"lr": 0.1, "_instantiator": "x"}}, path)
    assert checkpoint_hparams(read_checkpoint(path)) == {"lr": 0.1}


def test_hparams_differences_name_every_key_and_skip_neutral_ones():
    saved = {"lr": 0.01, "cuda_graphs": True, "net": {"init_args": {"dim": 2, "backend": "x"}}}
    current = {"lr": 0.1, "cuda_graphs": False, "net": {"init_args": {"backend": "y"}}}
    assert hparams_differences(saved, current) == [
        "model.lr: checkpoint 0.01, this run 0.1",
        "model.net.init_args.dim: checkpoint 2, this run (absent)",
    ]
    assert hparams_differences(saved, current, skip=["lr"], current_name="config") == [
        "model.net.init_args.dim: checkpoint 2, config (absent)"
    ]
