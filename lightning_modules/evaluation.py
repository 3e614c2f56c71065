"""What export costs, measured on a data split: accuracies and step-for-step agreement.

:func:`evaluate_export` runs four networks on the same batches:

- the trained network with its training kernel (``float``);
- the same with integer delays (``kernel="round"``, ``integer_delays``);
- the deployed original (:func:`~spatial_layers.networks.deploy.deployment_network`:
  integer delays, batch norm folded, weights quantised as exported);
- the network imported back from the NIR file (``nir``).

The last two must agree step for step (hidden and output spikes, readout
membrane); their disagreements are counted. Under a hardware profile,
:func:`evaluate_profile` compares the deployed torch network with the numpy
reference of the chip (:mod:`~spatial_layers.hardware.loihi2.reference`).

:func:`load_classifier` and :func:`datamodule_from_checkpoint` rebuild a
run from its checkpoint without executing code from it (``weights_only``
loading; data module classes only from ``lightning_modules.data`` unless
the user names one in a config file).
"""

from __future__ import annotations

import copy
import importlib
import operator
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.cli import instantiate_module
from torch import Tensor
from tqdm.auto import tqdm

from lightning_modules.checkpoints import checkpoint_hparams, read_checkpoint
from lightning_modules.classifier import SpikingClassifier, readout_logits
from spatial_layers import delay_layers
from spatial_layers.hardware.loihi2.reference import Program, run_program
from spatial_layers.networks import SNNOutput, SpatialSNN

#: Data module classes a checkpoint may name (anything else needs ``--config``).
TRUSTED_DATA_MODULES = "lightning_modules.data."
#: Network classes a checkpoint may name.
TRUSTED_NETWORKS = "spatial_layers.networks."


def load_classifier(path: Path) -> tuple[SpikingClassifier, dict[str, Any]]:
    """A :class:`SpikingClassifier` from a Lightning checkpoint, in eval mode on the CPU.

    Loads with ``weights_only=True``: plain tensors and containers, never code.
    The network is rebuilt from the checkpoint's ``hyper_parameters.net``
    (``class_path`` / ``init_args``, a class of ``spatial_layers.networks``),
    whether the classifier was built by the CLI or in Python.

    Returns:
        The model and the raw checkpoint dict.

    Raises:
        lightning_modules.checkpoints.CheckpointFileError: ``path`` is no such
            checkpoint (one line that names it).
    """
    checkpoint = read_checkpoint(path)
    hparams = checkpoint_hparams(checkpoint)
    net = hparams.get("net")
    class_path = net.get("class_path") if isinstance(net, dict) else None
    if not str(class_path).startswith(TRUSTED_NETWORKS):
        raise ValueError(
            f"{path} names network {class_path!r}, not a class of {TRUSTED_NETWORKS}* "
            "(hyper_parameters.net.class_path)"
        )
    model = instantiate_module(SpikingClassifier, hparams)
    model.on_load_checkpoint(checkpoint)  # an older format brought up to date first
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:  # a missing, extra or reshaped tensor
        raise ValueError(f"{path}: {' '.join(str(error).split())}") from error
    return model.eval(), checkpoint


def datamodule_from_checkpoint(
    checkpoint: dict[str, Any], config: Path | None = None
) -> L.LightningDataModule:
    """Rebuilds the run's data module from ``config`` (a run's ``config.yaml``) or the checkpoint.

    Lightning saves the data module's hyperparameters (and, under
    LightningCLI, its ``_class_path``) as ``datamodule_hyper_parameters``.
    A class named by a checkpoint must live in ``lightning_modules.data``;
    one named in ``config`` (the user's own file) may be any
    LightningDataModule.
    """
    if config is not None:
        try:
            loaded = yaml.safe_load(Path(config).read_text())
        except (OSError, yaml.YAMLError) as error:
            raise ValueError(f"{config}: not a readable YAML config ({error})") from error
        data = loaded.get("data") if isinstance(loaded, dict) else None
        if not isinstance(data, dict) or "class_path" not in data:
            raise ValueError(f"{config} has no data.class_path (expected a run's config.yaml)")
        class_path, init_args = str(data["class_path"]), dict(data.get("init_args") or {})
    else:
        saved = checkpoint.get("datamodule_hyper_parameters") or {}
        class_path = saved.get("_class_path")
        if not class_path:
            raise ValueError(
                "the checkpoint does not say which data module it was trained on (no "
                "datamodule_hyper_parameters with a _class_path); pass --config with the "
                "run's config.yaml"
            )
        if not str(class_path).startswith(TRUSTED_DATA_MODULES):
            raise ValueError(
                f"the checkpoint names data module {class_path!r} outside "
                f"{TRUSTED_DATA_MODULES}*; pass --config with the run's config.yaml to use it"
            )
        init_args = {k: v for k, v in saved.items() if not k.startswith("_")}
    module_name, _, class_name = str(class_path).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"cannot import data module {class_path!r}: {error}") from error
    if not (isinstance(cls, type) and issubclass(cls, L.LightningDataModule)):
        raise ValueError(f"{class_path!r} is not a LightningDataModule")
    return cls(**init_args)


def with_round_kernel(net: SpatialSNN) -> SpatialSNN:
    """A copy of ``net`` (eval mode) whose delayed layers all use the ``round`` kernel."""
    rounded = copy.deepcopy(net).eval()
    for layer in delay_layers(rounded):
        layer.kernel_kind = "round"
    return rounded


def _all_spikes(output: SNNOutput) -> list[Tensor]:
    return [*output.hidden_spikes, *([output.spikes] if output.spikes is not None else [])]


@torch.no_grad()
def evaluate_export(
    model: SpikingClassifier,
    deployed: SpatialSNN,
    imported: SpatialSNN,
    loader: Iterable[tuple[Tensor, Tensor]],
    *,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Accuracies of the float, rounded and imported networks, and deployed-vs-imported mismatches.

    Args:
        model: the trained classifier (its readout turns outputs into logits).
        deployed: the deployed original, quantised as exported.
        imported: the network read back from the NIR file.
        loader: batches ``(spikes (B, T, C), labels (B,))``.
        progress: tqdm progress bar (None: only on a terminal).

    Returns:
        ``samples``, ``accuracy`` (``float``, ``integer_delays``, ``nir``) and
        ``mismatches``: numbers of differing spike elements (hidden and output
        spikes) and readout membrane elements between ``deployed`` and
        ``imported``, the totals compared, and the largest membrane difference.
    """
    networks = {
        "float": model.net.eval(),
        "integer_delays": with_round_kernel(model.net),
        "nir": imported.eval(),
    }

    def batch_counts(x: Tensor, labels: Tensor) -> dict[str, float]:
        outputs = {name: net.run(x) for name, net in networks.items()}
        counts = {name: _correct(output, model.readout, labels) for name, output in outputs.items()}
        reference, candidate = deployed.run(x), outputs["nir"]
        for ours, theirs in zip(_all_spikes(reference), _all_spikes(candidate), strict=True):
            _add(counts, spikes=int((ours != theirs).sum()), spike_elements=ours.numel())
        difference = reference.membrane - candidate.membrane
        _add(
            counts,
            membrane=int((difference != 0).sum()),
            membrane_elements=difference.numel(),
            max_membrane_difference=float(difference.abs().max()),
        )
        return counts

    samples, totals = _tally(loader, batch_counts, "spsnn export: evaluating", progress)
    return {
        "samples": samples,
        "accuracy": {name: totals[name] / samples for name in networks},
        "mismatches": {
            name: totals[name] for name in (*MISMATCH_COUNTS, "max_membrane_difference")
        },
    }


#: What the evaluations count, batch by batch, between two runs of a network.
MISMATCH_COUNTS = ("spikes", "spike_elements", "membrane", "membrane_elements")


def _correct(output: SNNOutput, readout: str, labels: Tensor) -> int:
    return int((readout_logits(output, readout).argmax(dim=-1) == labels).sum())


def _add(counts: dict[str, float], **values: float) -> None:
    """Adds ``values`` into ``counts`` (a ``max_*`` key keeps the largest)."""
    for key, value in values.items():
        combine = max if key.startswith("max_") else operator.add
        counts[key] = combine(counts[key], value) if key in counts else value


def _tally(
    loader: Iterable[tuple[Tensor, Tensor]],
    batch_counts: Callable[[Tensor, Tensor], dict[str, float]],
    description: str,
    progress: bool | None,
) -> tuple[int, dict[str, float]]:
    """Sums ``batch_counts(x (T, B, C), labels)`` over the loader's batches; (samples, totals)."""
    totals: dict[str, float] = dict.fromkeys(MISMATCH_COUNTS, 0)
    samples = 0
    disable = None if progress is None else not progress  # None: tqdm's "only on a terminal"
    for spikes, labels in tqdm(loader, desc=description, disable=disable):
        _add(totals, **batch_counts(spikes.transpose(0, 1), labels))
        samples += labels.shape[0]
    if samples == 0:
        raise ValueError("the evaluation split is empty")
    return samples, totals


@torch.no_grad()
def evaluate_profile(
    model: SpikingClassifier,
    deployed: SpatialSNN,
    program: Program,
    loader: Iterable[tuple[Tensor, Tensor]],
    *,
    progress: bool | None = None,
) -> dict[str, Any]:
    """The torch network in a hardware profile against the numpy reference of the chip.

    Args:
        model: the trained classifier (its network as trained, and its readout).
        deployed: ``deployment_network(model.net, target=...)``.
        program: :func:`~spatial_layers.hardware.loihi2.reference.load_program` of
            the exported graph.
        loader: batches ``(spikes (B, T, C), labels (B,))`` of binary spikes.
        progress: tqdm progress bar (None: only on a terminal).

    Returns:
        ``samples``; ``accuracy`` of the network as trained (``trained``), of the
        deployed torch network (``profile``) and of the reference's readout
        (``reference``); ``mismatches``: spike elements (every spiking
        population) and readout membrane elements where the reference's
        integers differ from torch's numbers times ``2**fraction_bits``, with
        the totals compared; the reference's ``activation_overflows`` and
        ``saturations``.
    """
    readout = program.populations[-1]
    spiking = [p.name for p in program.populations if p.threshold is not None]

    def batch_counts(x: Tensor, labels: Tensor) -> dict[str, float]:
        ours = deployed.run(x)
        theirs = run_program(program, x.numpy())
        membrane = torch.from_numpy(theirs.membranes[readout.name]).double()
        readout_spikes = theirs.spikes.get(readout.name)
        reference = SNNOutput(
            membrane * 2.0**-readout.fraction_bits,
            None if readout_spikes is None else torch.from_numpy(readout_spikes).double(),
            [],
            [],
        )
        counts = {
            "trained": _correct(model.net.eval().run(x), model.readout, labels),
            "profile": _correct(ours, model.readout, labels),
            "reference": _correct(reference, model.readout, labels),
        }
        for name, trace in zip(spiking, _all_spikes(ours), strict=True):
            differing = int((trace.bool().numpy() != theirs.spikes[name]).sum())
            _add(counts, spikes=differing, spike_elements=trace.numel())
        scaled = ours.membrane.double() * 2.0**readout.fraction_bits
        _add(
            counts,
            membrane=int((scaled != membrane).sum()),
            membrane_elements=membrane.numel(),
            activation_overflows=theirs.activation_overflows,
            saturations=theirs.saturations,
        )
        return counts

    samples, totals = _tally(loader, batch_counts, "spsnn export: reference", progress)
    return {
        "samples": samples,
        "accuracy": {name: totals[name] / samples for name in ("trained", "profile", "reference")},
        "mismatches": {name: int(totals[name]) for name in MISMATCH_COUNTS},
        "activation_overflows": int(totals["activation_overflows"]),
        "saturations": int(totals["saturations"]),
    }
