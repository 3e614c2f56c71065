"""Bad checkpoint files, each with what spsnn's one-line refusal of it must say."""

from __future__ import annotations

import torch

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
