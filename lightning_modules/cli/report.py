"""Tables of results over seeds, from the ``summary.json`` files that ``spsnn fit`` writes.

``spsnn report runs/sweep`` finds every ``summary.json`` below the given
directories and groups the runs by run name and resolved configuration (the run's
``config.yaml``) minus the seed and what does not change a result (paths, loggers,
the LIF backend, ...; :data:`NOT_CONFIGURATION`): runs of one name that differ in
anything else (epochs, data sizes, devices, ...) are separate rows, each labelled with
what sets it apart. One Markdown row per group: the median test accuracy over the runs
and its spread (min-max), the seeds (a seed that appears twice is flagged, and so are
unseeded runs, ``--seed_everything false``: seed null, which nothing can repeat), the
trainable parameter counts and the median wall time. Where runs have layout measures
(``analysis.json`` beside their summary, from ``spsnn analyze``; else the ``analysis``
entry that the ``LayoutAnalysis`` callback puts in ``summary.json``), the table adds
the medians of the total wiring cost, the modularity and the small-world index
(:data:`LAYOUT_COLUMNS`), each with how many runs had it when not all did.
``--json`` also writes the rows as JSON. Nothing here trains or imports Lightning.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lightning_modules.checkpoints import RESULT_NEUTRAL_HPARAMS
from lightning_modules.outputs import check_writable_folder
from lightning_modules.summary import SUMMARY_KEYS

#: What a summary.json needs for the table (``spsnn fit`` writes them all).
REQUIRED_KEYS = (*SUMMARY_KEYS, "run_name", "seed")

#: Config keys (dotted) that do not change what a run computes: left out of the grouping.
NOT_CONFIGURATION = (
    "seed_everything", "ckpt_path", "config", "trainer.default_root_dir", "trainer.logger",
    "trainer.enable_progress_bar", "trainer.enable_model_summary", "data.init_args.data_dir",
    "data.init_args.num_workers", "run.name", "run.wandb", "run.wandb_project",
    "run.test_after_fit", "run.use_ckpt_hparams", "run.trust_checkpoint_classes",
    "checkpoint.dirpath", "predictions.filename", "summary.filename",
    "layout_plots.every_n_epochs", "layout_plots.top_k", "layout_analysis.enabled",
    "layout_analysis.every_n_epochs", "layout_analysis.communities", "layout_analysis.seed",
    *(f"model.{key}" for key in RESULT_NEUTRAL_HPARAMS),
)  # fmt: skip

COLUMNS = (
    "run",
    "runs",
    "seeds",
    "test acc median (%)",
    "min - max (%)",
    "val acc median (%)",
    "params",
    "weights",
    "coordinates",
    "free delays",
    "sparsity",
    "wall time (s)",
)


#: Layout measures shown when runs have them: (column, key of the flat measures).
LAYOUT_COLUMNS = (
    ("wiring cost", "wiring_cost"),
    ("modularity", "modularity"),
    ("small-world", "small_world"),
)
#: The file ``spsnn analyze`` writes beside a run's summary.json.
ANALYSIS_FILE = "analysis.json"
#: The folder of a run's W&B files, which hold copies of summary.json and analysis.json.
WANDB_FOLDER = "wandb"


@dataclass(frozen=True)
class GroupRow:
    """One run name's results over its seeds.

    Attributes:
        run: run name.
        runs: number of summaries found.
        seeds: their seeds, sorted (the seeded runs').
        test_median, test_min, test_max: test accuracy, fractions in [0, 1].
        val_median: validation accuracy, fraction, over the runs that validated (None: none
            did, e.g. ``limit_val_batches: 0``); val_runs: how many did.
        n_params, n_weights, n_coordinates, n_free_delays: trainable parameter
            counts (active weights when masked), from the first run.
        sparsity: fraction of absent synapses.
        wall_time_median_s: median ``spsnn fit`` wall time, seconds.
        test_acc_epoch: ``"last"`` or ``"best_val"`` (mixed groups are refused).
        unseeded: runs without a seed (``--seed_everything false``: ``seed`` null).
        layout: by key of :data:`LAYOUT_COLUMNS`, ``(median, runs with it)`` over the
            runs that have the measure (absent keys: no run has it).
    """

    run: str
    runs: int
    seeds: tuple[int, ...]
    test_median: float
    test_min: float
    test_max: float
    val_median: float | None
    n_params: int
    n_weights: int
    n_coordinates: int
    n_free_delays: int
    sparsity: float
    wall_time_median_s: float
    test_acc_epoch: str
    layout: dict[str, tuple[float, int]] = field(default_factory=dict)
    val_runs: int = 0
    unseeded: int = 0


def find_summaries(roots: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Every ``summary.json`` below ``roots`` (files or directories), parsed, each with its
    run's resolved configuration under ``"config"`` (the ``config.yaml`` beside it; None
    where there is none) and its layout measures under ``"layout"``
    (:func:`layout_measures`). The copies that W&B keeps in a run's ``wandb/`` folder are
    not runs of their own and are skipped."""
    summaries = []
    for root in map(Path, roots):
        if not root.exists():
            raise FileNotFoundError(f"no such file or directory: {root}")
        for path in [root] if root.is_file() else sorted(root.rglob("summary.json")):
            if root.is_dir() and WANDB_FOLDER in path.relative_to(root).parts[:-1]:
                continue  # the copy W&B keeps with its run, not another run
            summary = _read_summary(path)
            missing = [key for key in REQUIRED_KEYS if key not in summary]
            if missing:
                raise ValueError(f"{path} lacks the keys {missing}")
            if summary["test_acc"] is None:
                raise ValueError(
                    f"{path} has no test accuracy (its fit was not followed by a test of its "
                    "checkpoint; spsnn fit runs one unless run.test_after_fit is false)"
                )
            summary["config"] = _read_config(path.parent / "config.yaml")
            summary["layout"] = layout_measures(summary, path.parent / ANALYSIS_FILE)
            summaries.append(summary)
    return summaries


def layout_measures(summary: dict[str, Any], analysis: Path) -> dict[str, Any]:
    """A run's flat layout measures: ``analysis.json``'s ``summary`` (``spsnn analyze``,
    with null networks) over ``summary.json``'s ``analysis`` (the training callback)."""
    measures = dict(summary.get("analysis") or {})
    if analysis.is_file():
        try:
            found = json.loads(analysis.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{analysis}: not a readable analysis.json ({error})") from error
        if not isinstance(found, dict) or not isinstance(found.get("summary"), dict):
            raise ValueError(f"{analysis}: no 'summary' object (not written by spsnn analyze?)")
        measures |= found["summary"]
    return measures


def _read_config(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: not a readable config.yaml ({error})") from error
    return config if isinstance(config, dict) else None


def configuration(config: dict[str, Any] | None) -> dict[str, Any]:
    """The dotted keys of a resolved config that define a run's result (minus the seed and
    :data:`NOT_CONFIGURATION`); empty for None."""
    flat: dict[str, Any] = {}

    def walk(tree: Any, prefix: str) -> None:
        if isinstance(tree, dict):
            for key, value in tree.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = tree

    walk(config or {}, "")
    return {key: value for key, value in flat.items() if key not in NOT_CONFIGURATION}


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable summary.json ({error})") from error
    if not isinstance(summary, dict):
        raise ValueError(f"{path}: not a summary (a JSON object), got {type(summary).__name__}")
    return summary


def group_rows(summaries: Sequence[dict[str, Any]]) -> list[GroupRow]:
    """One :class:`GroupRow` per run name and configuration, in order of first appearance.

    Runs of one name with different configurations (their ``config.yaml``, see
    :func:`configuration`) are different rows, named ``name [key=value, ...]`` by what
    sets each apart; runs without a ``config.yaml`` group by name.

    Raises:
        ValueError: runs of one group whose networks differ (``net`` in their
            summaries, or their parameter counts) or that mix last-epoch and
            best-validation test accuracies.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for summary in summaries:
        key = json.dumps(configuration(summary.get("config")), sort_keys=True, default=str)
        groups.setdefault((summary["run_name"], key), []).append(summary)
    rows = []
    for (name, _), runs in groups.items():
        label = _label(name, runs[0], [r[0] for k, r in groups.items() if k[0] == name])
        if len({run["n_params"] for run in runs}) != 1:
            raise ValueError(f"runs named {label!r} have different parameter counts")
        if len({json.dumps(run.get("net"), sort_keys=True) for run in runs}) != 1:
            raise ValueError(
                f"runs named {label!r} ran different networks ('net' in their summary.json "
                "files); give each network its own run.name"
            )
        if len({run["test_acc_epoch"] for run in runs}) != 1:
            raise ValueError(f"runs named {label!r} mix last-epoch and best-val test accuracy")
        tests = [run["test_acc"] for run in runs]
        val_median, val_runs = _median_present(run["val_acc"] for run in runs)
        first = runs[0]
        rows.append(
            GroupRow(
                run=label,
                runs=len(runs),
                seeds=tuple(sorted(run["seed"] for run in runs if run["seed"] is not None)),
                unseeded=sum(run["seed"] is None for run in runs),
                test_median=statistics.median(tests),
                test_min=min(tests),
                test_max=max(tests),
                val_median=val_median,
                val_runs=val_runs,
                n_params=first["n_params"],
                n_weights=first["n_weights"],
                n_coordinates=first["n_coordinates"],
                n_free_delays=first.get("n_free_delays", 0),
                sparsity=first["sparsity"],
                wall_time_median_s=statistics.median(run["wall_time_s"] for run in runs),
                test_acc_epoch=first["test_acc_epoch"],
                layout=_layout_medians(runs),
            )
        )
    return rows


def _median_present(values: Iterable[Any]) -> tuple[float | None, int]:
    """The median of the numbers among ``values`` (None where there is none; a run without
    a measure holds None there) and how many there are."""
    numbers = [value for value in values if isinstance(value, int | float)]
    return (statistics.median(numbers) if numbers else None), len(numbers)


def _layout_medians(runs: Sequence[dict[str, Any]]) -> dict[str, tuple[float, int]]:
    medians = {}
    for _, key in LAYOUT_COLUMNS:
        median, count = _median_present((run.get("layout") or {}).get(key) for run in runs)
        if median is not None:
            medians[key] = (median, count)
    return medians


def _label(name: str, run: dict[str, Any], siblings: list[dict[str, Any]]) -> str:
    """``name``, or ``name [key=value, ...]`` with the keys in which this group's configuration
    differs from the other groups of the same name."""
    if len(siblings) < 2:
        return name
    own = configuration(run.get("config"))
    others = [configuration(sibling.get("config")) for sibling in siblings]
    keys = sorted(
        {k for other in others for k in set(own) | set(other) if own.get(k) != other.get(k)}
    )
    return f"{name} [{', '.join(f'{key}={own.get(key)}' for key in keys)}]"


def repeated_seeds(row: GroupRow) -> list[int]:
    """The seeds that appear more than once in ``row`` (the same run counted twice?)."""
    return sorted({seed for seed in row.seeds if row.seeds.count(seed) > 1})


def markdown_table(rows: Sequence[GroupRow]) -> str:
    """The rows as a Markdown table (accuracies in percent); the layout columns of
    :data:`LAYOUT_COLUMNS` that some row has come after the test accuracy."""
    layout = [(title, key) for title, key in LAYOUT_COLUMNS if any(key in r.layout for r in rows)]
    columns = [*COLUMNS[:5], *(title for title, _ in layout), *COLUMNS[5:]]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        cells = (
            row.run,
            str(row.runs),
            _seeds_cell(row),
            f"{100 * row.test_median:.2f}",
            f"{100 * row.test_min:.2f} - {100 * row.test_max:.2f}",
            *(_layout_cell(row, key) for _, key in layout),
            _counted_cell(row.val_median, row.val_runs, row.runs, scale=100, digits=2),
            str(row.n_params),
            str(row.n_weights),
            str(row.n_coordinates),
            str(row.n_free_delays),
            f"{row.sparsity:.2f}",
            f"{row.wall_time_median_s:.0f}",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _seeds_cell(row: GroupRow) -> str:
    """The seeds, then how many runs were unseeded and which seeds repeat, if any."""
    cell = ", ".join([*map(str, row.seeds), *(["unseeded"] if row.unseeded == 1 else [])])
    if row.unseeded > 1:
        cell += (", " if row.seeds else "") + f"unseeded x{row.unseeded}"
    repeated = repeated_seeds(row)
    return cell + (f" (repeated: {', '.join(map(str, repeated))})" if repeated else "")


def _layout_cell(row: GroupRow, key: str) -> str:
    median, count = row.layout.get(key, (None, 0))
    return _counted_cell(median, count, row.runs, digits=1 if key == "wiring_cost" else 3)


def _counted_cell(
    median: float | None, count: int, runs: int, *, scale: float = 1, digits: int
) -> str:
    """A median's cell: ``-`` without one, ``(count of runs)`` after it where only some
    runs had the value."""
    if median is None:
        return "-"
    text = f"{scale * median:.{digits}f}"
    return text if count == runs else f"{text} ({count} of {runs})"


def main(argv: Sequence[str] | None = None) -> None:
    """``spsnn report DIR [DIR ...] [--json OUT]``."""
    parser = argparse.ArgumentParser(
        prog="spsnn report", description="Results over seeds from summary.json files."
    )
    parser.add_argument("roots", nargs="+", help="run directories or summary.json files")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.json is not None:
        if args.json.is_dir():
            parser.error(f"--json {args.json}: a directory; give the file to write")
        try:
            check_writable_folder(args.json.absolute().parent, f"--json {args.json}")
        except ValueError as error:
            parser.error(str(error))
    try:
        rows = group_rows(find_summaries(args.roots))
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    if not rows:
        parser.error(f"no summary.json below {args.roots}")
    print(markdown_table(rows))
    for row in rows:
        if repeated_seeds(row):
            print(
                f"spsnn report: {row.run!r} counts seeds {repeated_seeds(row)} more than once "
                "(the same run found twice, or runs that differ in nothing but their folder)",
                file=sys.stderr,
            )
        if row.unseeded:
            print(
                f"spsnn report: {row.run!r} has {row.unseeded} unseeded run(s) "
                "(--seed_everything false: seed null), which nobody can repeat",
                file=sys.stderr,
            )
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=2) + "\n")
