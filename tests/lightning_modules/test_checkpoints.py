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
from tests.helpers.checkpoints import BAD_FILES, bad_checkpoint


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
        "model.lr: checkpoint 0.01, command 0.1",
        "model.net.init_args.dim: checkpoint 2, command (absent)",
    ]
    assert hparams_differences(saved, current, skip=["lr"], current_name="config") == [
        "model.net.init_args.dim: checkpoint 2, config (absent)"
    ]
