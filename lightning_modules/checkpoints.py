"""Checkpoint files as the ``spsnn`` command reads them: one-line errors, hyperparameter checks.

:func:`read_checkpoint` loads a Lightning checkpoint with ``weights_only=True`` and
turns every way a file can be wrong (missing, a directory, empty, truncated, not
written by ``torch.save``, not a classifier's checkpoint) into one
:class:`CheckpointFileError` line that names the file. :func:`hparams_differences`
lists where a run's model hyperparameters and a checkpoint's disagree, so that
``--ckpt_path`` never replaces what the user asked for in silence.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

#: Model hyperparameters that by contract change no number a run produces beyond float
#: rounding (the same numbers on every LIF backend, with or without CUDA graphs; the
#: delay algorithms agree to float rounding): a checkpoint may differ.
RESULT_NEUTRAL_HPARAMS = ("cuda_graphs", "net.init_args.backend", "net.init_args.method")

#: Network classes that moved, by the path a checkpoint written before the move names.
MOVED_NETWORKS = {"lightning_modules.models.SpatialSNN": "spatial_layers.networks.snn.SpatialSNN"}

#: Longest excerpt of torch's own error quoted in a one-line message.
REASON_CHARS = 120


class CheckpointFileError(ValueError):
    """A file given as a checkpoint is not one; the message names the file and what is wrong."""


def _reason(error: BaseException) -> str:
    """``Type: first sentence`` of an exception, at most :data:`REASON_CHARS` characters."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    sentence = text.split(". ")[0][:REASON_CHARS]
    return f"{type(error).__name__}: {sentence}" if sentence else type(error).__name__


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A SpikingClassifier checkpoint as plain data (``weights_only=True``, on the CPU).

    Raises:
        CheckpointFileError: one line naming ``path`` and what is wrong with it.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointFileError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointFileError(
            f"{path}: a directory, not a checkpoint file (a run keeps its checkpoints in "
            "<run dir>/checkpoints/*.ckpt)"
        )
    if path.stat().st_size == 0:
        raise CheckpointFileError(f"{path}: an empty file (0 bytes), not a checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # every way a file fails to decode: truncated, foreign, ...
        raise CheckpointFileError(
            f"{path}: not a readable checkpoint (truncated, or not written by torch.save; "
            f"{_reason(error)})"
        ) from error
    if not isinstance(checkpoint, dict) or not {"state_dict", "hyper_parameters"} <= set(
        checkpoint
    ):
        raise CheckpointFileError(
            f"{path}: not a SpikingClassifier checkpoint (it lacks the 'state_dict' and "
            "'hyper_parameters' that Lightning saves)"
        )
    broken = nonfinite_tensors(checkpoint["state_dict"])
    if broken:
        raise CheckpointFileError(f"{path}: {broken}")
    return checkpoint


def nonfinite_tensors(state: Mapping[str, Any]) -> str | None:
    """``"NaN or Inf in net.x (3 of 128 values), ...: ..."`` for a state dict whose float
    tensors hold non-finite values (a diverged run), else None."""
    broken = [
        f"{key} ({int((~value.isfinite()).sum())} of {value.numel()} values)"
        for key, value in state.items()
        if isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and not bool(value.isfinite().all())
    ]
    if not broken:
        return None
    return (
        f"NaN or Inf in {', '.join(broken[:3])}{' and more' if len(broken) > 3 else ''}: the "
        "run diverged before this checkpoint; take an earlier one, or retrain with a lower "
        "learning rate"
    )


#: Input settings that checkpoints record since a later spsnn: a checkpoint saved before
#: one was recorded is not compared on it (it stays loadable).
ADDED_INPUT_SETTINGS = ("transform_fingerprint",)


def input_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``data.<setting>: checkpoint X, command Y`` for every input setting that differs
    (``DataModule.input_settings``; a checkpoint without them is not compared, nor one
    without a setting of :data:`ADDED_INPUT_SETTINGS`). A transform of the same name that
    computes something else (its ``transform_fingerprint``) is named with the fix.

    >>> input_differences({"num_steps": 10, "transform": "m.f", "transform_fingerprint": "ab"},
    ...                   {"num_steps": 20, "transform": "m.f", "transform_fingerprint": "cd"})
    ['data.num_steps: checkpoint 10, command 20', 'data.transform: m.f computes other events \
than when the checkpoint was trained (its code, parameters or the values it reads changed, \
or the Python or package versions did; fingerprint checkpoint ab, command cd): evaluate with \
the transform and versions it was trained with, or retrain']
    """
    differences = []
    for key in sorted(set(saved) | set(current)):
        theirs, ours = saved.get(key, _ABSENT), current.get(key, _ABSENT)
        if theirs == ours or (key in ADDED_INPUT_SETTINGS and key not in saved):
            continue
        if key == "transform_fingerprint":
            if saved.get("transform") == current.get("transform"):  # else named as transform
                differences.append(
                    f"data.transform: {current.get('transform')} computes other events than "
                    "when the checkpoint was trained (its code, parameters or the values it "
                    "reads changed, or the Python or package versions did; fingerprint "
                    f"checkpoint {_short(theirs)}, command {_short(ours)}): evaluate with the "
                    "transform and versions it was trained with, or retrain"
                )
            continue
        differences.append(f"data.{key}: checkpoint {theirs!r}, command {ours!r}")
    return differences


def _short(fingerprint: object) -> str:
    """The first 12 hex digits of a fingerprint; what stands in for one not recorded."""
    return fingerprint[:12] if isinstance(fingerprint, str) else "(not recorded)"


def checkpoint_hparams(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The model hyperparameters a checkpoint holds, without Lightning's private ``_`` keys,
    its network named by the class's current path (:data:`MOVED_NETWORKS`)."""
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
    net = hparams.get("net")
    if isinstance(net, Mapping) and net.get("class_path") in MOVED_NETWORKS:
        hparams["net"] = {**net, "class_path": MOVED_NETWORKS[net["class_path"]]}
    return hparams


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"net": {"init_args": {"dim": 2}}}`` -> ``{"net.init_args.dim": 2}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def hparams_differences(
    saved: Mapping[str, Any],
    current: Mapping[str, Any],
    skip: Iterable[str] = (),
    current_name: str = "command",
) -> list[str]:
    """``model.<key>: checkpoint X, command Y`` for every model hyperparameter that differs.

    Nested keys are dotted (``model.net.init_args.dim``); :data:`RESULT_NEUTRAL_HPARAMS`,
    ``skip`` and keys starting with ``_`` are left out.

    >>> hparams_differences({"lr": 0.1, "net": {"init_args": {"dim": 2}}},
    ...                     {"lr": 0.1, "net": {"init_args": {"dim": 3}}})
    ['model.net.init_args.dim: checkpoint 2, command 3']
    """
    ours, theirs = _flat(current), _flat(saved)
    left_out = {*RESULT_NEUTRAL_HPARAMS, *skip}
    return [
        f"model.{key}: checkpoint {theirs.get(key, _ABSENT)!r}, "
        f"{current_name} {ours.get(key, _ABSENT)!r}"
        for key in sorted(set(ours) | set(theirs))
        if key not in left_out
        and not key.startswith("_")
        and ours.get(key, _ABSENT) != theirs.get(key, _ABSENT)
    ]


def run_of_checkpoint(path: Path) -> Path | None:
    """The run folder (``<root>/<name>/version_<n>``) a checkpoint file lies in
    (``<run>/checkpoints/*.ckpt``), or None for a checkpoint elsewhere."""
    folder = path.resolve().parent
    if folder.name == "checkpoints" and folder.parent.name.startswith("version_"):
        return folder.parent
    return None


def latest_checkpoint(runs: Path) -> Path | None:
    """``<runs>/version_<n>/checkpoints/last.ckpt`` of the highest ``n`` that has one, or None.

    Example:
        >>> latest_checkpoint(Path("no/such/runs")) is None
        True
    """
    found = []
    for candidate in runs.glob("version_*/checkpoints/last.ckpt"):
        version = candidate.parent.parent.name.removeprefix("version_")
        if version.isdigit():
            found.append((int(version), candidate))
    return max(found)[1] if found else None
