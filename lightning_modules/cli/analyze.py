"""``spsnn analyze CKPT_OR_RUN``: every measure of a trained network's layout, into its run folder.

::

    spsnn analyze runs/yinyang/version_0 [--nulls 100] [--split test] [--seed 0]
        [--graph auto] [--ordered-inputs auto] [--no-modularity-nulls] [--louvain numpy]
        [--config CONFIG] [--out DIR] [--no-figures] [--wandb auto]

Takes a run folder (its ``checkpoints/last.ckpt``) or a checkpoint file. Loads the
SpikingClassifier with ``weights_only=True``, rebuilds its data module (from the
checkpoint, or ``--config``), runs the split through the network with the kernel the
run evaluates with (``model.eval_kernel``) to record every hidden neuron's rate per
sample, and computes :func:`spatial_layers.analysis.analyze` with ``--nulls`` null
networks per null model (a progress bar counts them). Writes into the run folder (or
``--out``; a checkpoint outside a run folder: its own folder) ``analysis.json``
(every measure, its null statistics and the settings used; an earlier analysis is
replaced) and the figures ``analysis_*.png`` (layout coloured by community and by
preferred class, adjacency by community, weight against distance, delay histograms,
null distributions), and logs both to the run's W&B run when it has one (offline
unless ``WANDB_MODE`` says otherwise). The folder is probed for writing before any
work; errors are one line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from lightning_modules.checkpoints import latest_checkpoint, run_of_checkpoint
from lightning_modules.classifier import readout_logits
from lightning_modules.evaluation import datamodule_from_checkpoint, load_classifier
from lightning_modules.outputs import check_writable_folder
from spatial_layers import analysis, use_kernel
from spatial_layers.analysis.graph import LOUVAIN_METHODS
from spatial_layers.analysis.nulls import NULL_MODELS

#: The file the command writes into the run folder.
ANALYSIS_FILE = "analysis.json"
#: Splits and the DataModule stage and loader that give them.
SPLITS = {"test": ("test", "test_dataloader"), "val": ("validate", "val_dataloader"),
          "train": ("fit", "train_dataloader")}  # fmt: skip
#: Data modules whose input channels are ordered (SHD's and SSC's are frequencies).
ORDERED_DATA = ("HeidelbergDataModule", "SHDDataModule", "SSCDataModule")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spsnn analyze``."""
    parser = argparse.ArgumentParser(
        prog="spsnn analyze",
        description="Measures of a trained network's layout (wiring, graph against null "
        "networks, space and function) into analysis.json and figures in its run folder.",
    )
    parser.add_argument(
        "target", type=Path, help="a run folder (runs/<name>/version_<n>) or a checkpoint"
    )
    parser.add_argument(
        "--nulls", type=int, default=100, help="null networks per null model (default 100)"
    )
    parser.add_argument(
        "--split", choices=tuple(SPLITS), default="test", help="data to record activity on"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds nulls, permutations, Louvain")
    parser.add_argument(
        "--graph",
        choices=analysis.GRAPH_CHOICES,
        default="auto",
        help="the graph of the graph measures: 'hidden' (recurrent networks' default) or "
        "'all' populations (feed-forward networks' default)",
    )
    parser.add_argument(
        "--null-models",
        nargs="+",
        choices=tuple(NULL_MODELS),
        default=list(NULL_MODELS),
        help="null models (default: all)",
    )
    parser.add_argument(
        "--ordered-inputs",
        choices=("auto", "yes", "no"),
        default="auto",
        help="measure how the input order (frequency) maps onto space; auto: for SHD/SSC",
    )
    parser.add_argument(
        "--no-modularity-nulls",
        action="store_true",
        help="skip Louvain on the null networks (the slowest part on large graphs)",
    )
    parser.add_argument(
        "--louvain", choices=LOUVAIN_METHODS, default="numpy", help="Louvain implementation"
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="the run's config.yaml, to rebuild its data"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="folder to write into (default: the run folder)"
    )
    parser.add_argument("--no-figures", action="store_true", help="write analysis.json only")
    parser.add_argument(
        "--wandb",
        choices=("auto", "yes", "no"),
        default="auto",
        help="log to the run's W&B run (auto: when the run folder has one)",
    )
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs ``spsnn analyze``; returns what it wrote to ``analysis.json``.

    Bad input exits with the parser's usage and one line that says what is wrong.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _analyze(args)
    except ValueError as error:
        parser.error(str(error))


def resolve_target(target: Path) -> tuple[Path, Path | None]:
    """(checkpoint, run folder or None) of a run folder or a checkpoint file.

    Raises:
        ValueError: no such file or folder, a folder without ``checkpoints/last.ckpt``
            (a run name's folder of several runs is named with its newest run).
    """
    if target.is_dir():
        checkpoint = target / "checkpoints" / "last.ckpt"
        if checkpoint.is_file():
            return checkpoint, target
        newest = latest_checkpoint(target)
        if newest is not None:
            raise ValueError(
                f"{target} holds several runs: give one run folder, e.g. {newest.parent.parent}"
            )
        raise ValueError(f"{target} has no checkpoints/last.ckpt: give a run folder or a .ckpt")
    if not target.exists():
        raise ValueError(f"{target}: no such run folder or checkpoint")
    return target, run_of_checkpoint(target)


def _check(args: argparse.Namespace) -> None:
    if args.nulls < 0:
        raise ValueError(f"--nulls must be >= 0, got {args.nulls}")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ValueError(
            f"--out {args.out} is a file: give the folder to write analysis.json and the "
            "figures into"
        )
    if args.out is not None and not args.out.is_dir():
        raise ValueError(f"--out {args.out}: no such folder (create it first)")


def _analyze(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    _check(args)
    checkpoint_path, run_dir = resolve_target(args.target)
    out_dir = args.out or run_dir or checkpoint_path.resolve().parent
    check_writable_folder(out_dir, str(out_dir / ANALYSIS_FILE))
    if args.wandb == "yes" and wandb_run_id(run_dir or out_dir) is None:
        raise ValueError(_no_wandb_run(run_dir or out_dir))
    model, checkpoint = load_classifier(checkpoint_path)
    datamodule = datamodule_from_checkpoint(checkpoint, args.config)
    stage, loader_name = SPLITS[args.split]
    datamodule.setup(stage)
    loader = getattr(datamodule, loader_name)()
    ordered = args.ordered_inputs == "yes" or (
        args.ordered_inputs == "auto" and type(datamodule).__name__ in ORDERED_DATA
    )
    net = model.net
    correct = [0, 0]

    def count(output, labels: torch.Tensor) -> None:
        predictions = readout_logits(output, model.readout).argmax(-1)
        correct[0] += int((predictions == labels).sum())
        correct[1] += len(labels)

    eval_kernel = model.hparams.get("eval_kernel")
    print(f"spsnn analyze: recording the {args.split} split with {checkpoint_path}", flush=True)
    with use_kernel(net, eval_kernel):
        activity = analysis.record_activity(net, loader, on_batch=count)
        total = args.nulls * len(args.null_models)
        with tqdm(total=total, desc="spsnn analyze: null networks", disable=None) as bar:
            result = analysis.analyze(
                net,
                activity,
                nulls=args.nulls,
                seed=args.seed,
                graph_kind=args.graph,
                null_models=args.null_models,
                modularity_nulls=not args.no_modularity_nulls,
                louvain=args.louvain,
                ordered_inputs=ordered,
                on_null=bar.update,
            )
    result["settings"] |= {
        "checkpoint": str(checkpoint_path),
        "run": None if run_dir is None else str(run_dir),
        "split": args.split,
        "eval_kernel": eval_kernel,
        "data": type(datamodule).__name__,
    }
    result["function"]["accuracy"] = correct[0] / correct[1] if correct[1] else None
    figures = []
    if not args.no_figures:
        from lightning_modules.analysis_figures import save_analysis_figures

        tuning = tuning_of(activity)
        with use_kernel(net, eval_kernel):
            figures = save_analysis_figures(net, result, tuning, out_dir)
    result["figures"] = [path.name for path in figures]
    result["wall_time_s"] = round(time.perf_counter() - started, 2)
    path = out_dir / ANALYSIS_FILE
    path.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    print(_summary_line(result, path), flush=True)
    if args.wandb == "yes" or (args.wandb == "auto" and run_dir is not None):
        logged = log_to_wandb(
            run_dir or out_dir, path, figures, result, required=args.wandb == "yes"
        )
        if logged:
            print(f"spsnn analyze: logged to W&B run {logged}", flush=True)
    return result


def _summary_line(result: dict[str, Any], path: Path) -> str:
    summary = result["summary"]

    def show(key: str, digits: int = 3) -> str:
        value = summary.get(key)
        return "n/a" if value is None else f"{value:.{digits}f}"

    accuracy = result["function"].get("accuracy")
    return (
        f"spsnn analyze: wrote {path} ({len(result['figures'])} figures) in "
        f"{result['wall_time_s']:.1f} s: accuracy "
        f"{'n/a' if accuracy is None else f'{100 * accuracy:.2f} %'}, wiring cost "
        f"{show('wiring_cost', 1)}, modularity {show('modularity')}, small-world index "
        f"{show('small_world')}, Moran's I {show('moran_i')}, ridge R^2 {show('ridge_r2')}"
    )


def _no_wandb_run(run_dir: Path) -> str:
    return f"--wandb yes: {run_dir} has no W&B run (no wandb/ folder); use --wandb auto or no"


def wandb_run_id(run_dir: Path) -> str | None:
    """The id of the newest W&B run in ``run_dir/wandb`` (``offline-run-<time>-<id>`` or
    ``run-<time>-<id>``), or None."""
    folder = run_dir / "wandb"
    if not folder.is_dir():
        return None
    runs = sorted(
        (
            p
            for p in folder.iterdir()
            if p.is_dir() and p.name.split("-", 1)[0] in ("run", "offline")
        ),
        key=lambda p: p.name.split("run-", 1)[-1],
    )
    return runs[-1].name.rsplit("-", 1)[-1] if runs else None


def _wandb_project(run_dir: Path) -> str:
    """The run's W&B project: ``run.wandb_project`` of its config.yaml, else "spsnn"."""
    import yaml

    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        return str(config["run"]["wandb_project"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return "spsnn"


def log_to_wandb(
    run_dir: Path, path: Path, figures: list[Path], result: dict[str, Any], *, required: bool
) -> str | None:
    """Resumes the run's W&B run and adds the headline measures to its summary
    (``analysis/<name>``), the figures as images and ``analysis.json`` as a file.

    Returns:
        The W&B run id, or None where the run has none (an error when ``required``).
    """
    run_id = wandb_run_id(run_dir)
    if run_id is None:
        if required:
            raise ValueError(_no_wandb_run(run_dir))
        return None
    import wandb

    os.environ.setdefault("WANDB_MODE", "offline")
    run = wandb.init(
        project=_wandb_project(run_dir),
        id=run_id,
        resume="allow",
        dir=str(run_dir),
        job_type="analyze",
        reinit="finish_previous",
    )
    try:
        summary = {f"analysis/{k}": v for k, v in result["summary"].items() if v is not None}
        run.summary.update(summary)
        images = {
            f"analysis/{p.stem.removeprefix('analysis_')}": wandb.Image(str(p)) for p in figures
        }
        if images:
            run.log(images)
        run.save(str(path), base_path=str(path.parent), policy="now")
    finally:
        run.finish()
    return run_id


def tuning_of(activity: analysis.Activity) -> np.ndarray:
    """(K, H) class-conditional rates of the recorded hidden neurons."""
    return analysis.function.class_rates(activity.rates, activity.labels, activity.num_classes)
