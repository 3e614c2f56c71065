"""``spsnn export CKPT OUT.nir``: a trained checkpoint as a NIR file, optionally evaluated.

::

    spsnn export runs/yinyang/version_0/checkpoints/last.ckpt yinyang.nir \\
        [--dt 0.001] [--weight-bits 8] [--max-delay N] [--clip-delays] [--target loihi2] \\
        [--evaluate [--config runs/yinyang/version_0/config.yaml]] [--force]

Loads the SpikingClassifier checkpoint with ``weights_only=True`` (no code
from the checkpoint runs), writes the graph (see
:mod:`spatial_layers.nir.graph`) and prints one summary line. With
``--evaluate`` it rebuilds the run's data module (from the checkpoint's saved
data module hyperparameters, or ``--config``), reads the file back and
reports on the test split: the accuracy of the float model, with integer
delays, with integer delays and k-bit weights (the NIR import), and the
number of spike and membrane mismatches between the deployed original and
the import, step for step; as a table and as JSON in ``OUT.evaluation.json``
(``yinyang.evaluation.json`` for ``yinyang.nir``). The export never writes over its
checkpoint or a run's files, and refuses an existing OUT without ``--force``.

With ``--target loihi2`` the file holds the chip's values (8-bit mantissas
times a power of two per layer, delays in 0..62, the fixed-point formats in
the metadata), a report of what the network uses of the chip is printed and
written beside the graph (``OUT.loihi2_report.json`` / ``.txt``), and
``--evaluate`` runs the numpy reference of the chip
(:mod:`~spatial_layers.hardware.loihi2.reference`) on the test split against
the torch network in the profile, counting every spike and readout value
that differs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lightning_modules.evaluation import (
    datamodule_from_checkpoint,
    evaluate_export,
    evaluate_profile,
    load_classifier,
)
from lightning_modules.outputs import check_writable_folder
from spatial_layers.hardware import PROFILES
from spatial_layers.hardware.loihi2.report import format_report
from spatial_layers.networks.deploy import deployment_network
from spatial_layers.nir.graph import from_nir, graph_summary, write_nir
from spatial_layers.nir.loihi2 import graph_report, load_program


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spsnn export``."""
    parser = argparse.ArgumentParser(
        prog="spsnn export",
        description="Export a trained spsnn checkpoint as a NIR graph with integer delays.",
    )
    parser.add_argument("checkpoint", type=Path, help="SpikingClassifier checkpoint (.ckpt)")
    parser.add_argument("output", type=Path, help="NIR file to write (HDF5, e.g. model.nir)")
    parser.add_argument("--dt", type=float, default=1e-3, help="seconds per time step")
    parser.add_argument(
        "--weight-bits", type=int, default=None, help="quantise weights to k bits (>= 2)"
    )
    parser.add_argument(
        "--max-delay", type=int, default=None, help="hardware limit on a delay, in steps"
    )
    parser.add_argument(
        "--clip-delays",
        action="store_true",
        help="clamp delays above --max-delay (or above the --target's limit)",
    )
    parser.add_argument(
        "--target",
        choices=tuple(PROFILES),
        default=None,
        help="hardware profile: write the chip's values and formats, report what the network "
        "uses of the chip (printed and in the run folder); --evaluate then compares with "
        "a numpy reference of the chip's integer arithmetic",
    )
    parser.add_argument(
        "--evaluate", action="store_true", help="report accuracies and mismatches on the test split"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="the run's config.yaml, to rebuild the data module for --evaluate",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite OUTPUT (and its reports) if it exists"
    )
    return parser


def export_main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs ``spsnn export``; returns the summary (and evaluation) it printed.

    Bad input (a checkpoint that is missing, truncated or foreign, an output
    that is a directory, impossible options, delays over ``--max-delay``) exits
    with the parser's usage and one line that says what is wrong.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _export(args)
    except ValueError as error:
        parser.error(str(error))


def _export(args: argparse.Namespace) -> dict[str, Any]:
    if args.clip_delays and args.max_delay is None and args.target is None:
        raise ValueError("--clip-delays needs --max-delay (or --target)")
    check_output_file(args.output, args.checkpoint, force=args.force)
    model, checkpoint = load_classifier(args.checkpoint)
    graph = write_nir(
        model.net,
        args.output,
        dt=args.dt,
        weight_bits=args.weight_bits,
        max_delay=args.max_delay,
        clip_delays=args.clip_delays,
        readout=model.readout,
        target=args.target,
    )
    summary = graph_summary(graph)
    bits = graph.metadata["weight_bits"]
    weights = "float" if not bits else f"{bits}-bit"
    clipped = int(graph.metadata.get("clipped_synapses", 0))
    print(
        f"spsnn export: wrote {args.output}: {summary['nodes']} nodes, {summary['branches']} "
        f"branches ({summary['delay_nodes']} Delay nodes), delays {summary['min_delay']}.."
        f"{summary['max_delay']} steps of {summary['dt']:g} s, {weights} weights"
        + (f", {clipped} delays clipped" if clipped else ""),
        flush=True,
    )
    result: dict[str, Any] = {
        "checkpoint": str(args.checkpoint),
        "nir": str(args.output),
        "weight_bits": args.weight_bits,
        "max_delay": args.max_delay,
        "clip_delays": args.clip_delays,
        "clipped_synapses": clipped,
        "graph": summary,
    }
    if args.target is not None:
        result["target"] = args.target
        result["hardware_report"] = _hardware_report(graph, args.output)
    if not args.evaluate:
        return result
    if args.target is not None:
        return _evaluate_profile(args, model, checkpoint, result)
    datamodule = datamodule_from_checkpoint(checkpoint, args.config)
    datamodule.setup("test")
    deployed, _ = deployment_network(model.net, weight_bits=args.weight_bits)
    imported = from_nir(args.output)
    training_kernel = model.net.layers[0].kernel_kind
    result |= {"split": "test", "training_kernel": training_kernel}
    result |= evaluate_export(model, deployed, imported, datamodule.test_dataloader())
    path = sidecar(args.output, "evaluation.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(_table(result, weights), flush=True)
    print(f"spsnn export: evaluation written to {path}", flush=True)
    return result


def sidecar(output: Path, kind: str) -> Path:
    """A file written with the export, beside it: ``<stem>.<kind>`` (``model.nir`` ->
    ``model.evaluation.json``), never a file of the run it came from."""
    return output.with_name(f"{output.stem}.{kind}")


def _hardware_report(graph, output: Path) -> dict[str, Any]:
    """Prints the Loihi 2 report and writes it (JSON and text) beside the exported graph."""
    report = graph_report(graph)
    text = format_report(report)
    print(text, flush=True)
    sidecar(output, "loihi2_report.json").write_text(json.dumps(report, indent=2) + "\n")
    sidecar(output, "loihi2_report.txt").write_text(text + "\n")
    print(f"spsnn export: report written to {sidecar(output, 'loihi2_report.json')}", flush=True)
    return report


def _evaluate_profile(
    args: argparse.Namespace, model, checkpoint: dict[str, Any], result: dict[str, Any]
) -> dict[str, Any]:
    datamodule = datamodule_from_checkpoint(checkpoint, args.config)
    datamodule.setup("test")
    deployed, _ = deployment_network(
        model.net, target=args.target, max_delay=args.max_delay, clip_delays=args.clip_delays
    )
    program = load_program(args.output)
    result |= {"split": "test"}
    result |= evaluate_profile(model, deployed, program, datamodule.test_dataloader())
    path = sidecar(args.output, "evaluation.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    accuracy, mismatches = result["accuracy"], result["mismatches"]
    print(
        f"test split, {result['samples']} samples: as trained {100 * accuracy['trained']:.2f} %, "
        f"{args.target} profile (torch) {100 * accuracy['profile']:.2f} %, numpy reference of "
        f"the chip {100 * accuracy['reference']:.2f} %\n"
        f"torch profile vs reference, step for step: {mismatches['spikes']} / "
        f"{mismatches['spike_elements']} spike mismatches, {mismatches['membrane']} / "
        f"{mismatches['membrane_elements']} readout membrane mismatches; "
        f"{result['activation_overflows']} synaptic input overflows, "
        f"{result['saturations']} membrane saturations",
        flush=True,
    )
    print(f"spsnn export: evaluation written to {path}", flush=True)
    return result


#: The names a NIR file may have (NIR files are HDF5).
NIR_SUFFIXES = (".nir", ".h5", ".hdf5")


def check_output_file(path: Path, checkpoint: Path, *, force: bool = False) -> None:
    """Raises ValueError (one line naming ``path``) unless the export may write there: not a
    folder, named as a NIR file (:data:`NIR_SUFFIXES`), not the checkpoint itself, in a
    writable folder, and new unless ``force``."""
    if path.is_dir():
        raise ValueError(f"{path}: a directory; give the file to write, e.g. {path / 'model.nir'}")
    if path.exists() and checkpoint.exists() and path.samefile(checkpoint):
        raise ValueError(f"{path} is the checkpoint itself: give another file to write")
    if path.suffix.lower() not in NIR_SUFFIXES:
        raise ValueError(
            f"{path}: a NIR file is HDF5 and is named *.nir (or .h5, .hdf5); give e.g. "
            f"{path.with_suffix('.nir')}"
        )
    check_writable_folder(path.parent, str(path))
    if path.exists() and not force:
        raise ValueError(f"{path} exists: give another file, or --force to overwrite it")


def _table(result: dict[str, Any], weights: str) -> str:
    accuracy, mismatches = result["accuracy"], result["mismatches"]
    rows = [
        (f"float (training kernel {result['training_kernel']!r})", accuracy["float"]),
        ("integer delays (kernel 'round')", accuracy["integer_delays"]),
        (f"integer delays + {weights} weights (NIR import)", accuracy["nir"]),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"test split, {result['samples']} samples", f"{'model':<{width}}  accuracy"]
    lines += [f"{name:<{width}}  {100 * value:6.2f} %" for name, value in rows]
    lines.append(
        f"deployed original vs NIR import, step for step: {mismatches['spikes']} / "
        f"{mismatches['spike_elements']} spike mismatches, {mismatches['membrane']} / "
        f"{mismatches['membrane_elements']} membrane mismatches"
    )
    return "\n".join(lines)
