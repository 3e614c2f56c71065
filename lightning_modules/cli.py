"""The ``spsnn`` command: LightningCLI with spsnn's defaults.

``spsnn fit --config recipes/yinyang.yaml`` trains, then tests the last (or
best-validation) checkpoint, prints the test accuracy and writes
``summary.json`` and the layout plots into the run directory
``<trainer.default_root_dir>/<run.name>/version_<n>/``. Also ``spsnn
validate|test|predict --config ... --ckpt_path ...``, ``spsnn export CKPT
OUT.nir`` (:mod:`lightning_modules.export.cli`) and ``spsnn report RUN_DIR``
(:mod:`lightning_modules.report`).

What this adds to a plain LightningCLI:

- ``data`` is any LightningDataModule (``class_path`` in the recipe); its
  ``num_inputs`` and ``num_classes`` are linked into the network
  (``model.net.init_args``), its ``num_steps`` into ``model`` (:data:`DATA_LINKS`).
- Loggers: CSV always, plus W&B (offline unless the user set ``WANDB_MODE``;
  its files inside the run directory). ``run.wandb: false`` turns W&B off;
  a ``trainer.logger`` given in the config replaces both.
- Always-on callbacks: ``checkpoint`` (ModelCheckpoint keeping the best
  ``val_acc``, configurable), ``layout_plots`` (PNG plots, configurable), a
  second ModelCheckpoint that rewrites ``last.ckpt`` after every epoch (the
  resume point), and :class:`StepSeed` for exact resumes.
- Checkpoints load with ``weights_only=True`` unless told otherwise.
- A fixed default seed (42) and ``deterministic`` training.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from lightning import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_info

from lightning_modules.callbacks import LayoutPlots, StepSeed
from lightning_modules.classifier import SpikingClassifier
from lightning_modules.summary import model_summary, write_summary

DEFAULT_SEED = 42
DEFAULT_ROOT_DIR = "runs"
#: Data module properties -> where the CLI links them (when the classes are built).
DATA_LINKS = {
    "num_inputs": "model.net.init_args.num_inputs",
    "num_classes": "model.net.init_args.num_classes",
    "num_steps": "model.num_steps",
}


@dataclass
class RunOptions:
    """What ``spsnn fit`` does around ``Trainer.fit``.

    Args:
        name: run name: runs go to ``<trainer.default_root_dir>/<name>/version_<n>``;
            default: the stem of the last ``--config`` file, else "spsnn".
        wandb: also log to Weights & Biases (offline unless ``WANDB_MODE`` is set).
        wandb_project: W&B project name.
        test_after_fit: run ``test`` after ``fit`` and write ``summary.json``.
        test_ckpt: which checkpoint that test uses: ``"last"`` (last epoch) or
            ``"best_val"`` (best validation accuracy; never the test set).
    """

    name: str | None = None
    wandb: bool = True
    wandb_project: str = "spsnn"
    test_after_fit: bool = True
    test_ckpt: Literal["last", "best_val"] = "last"


class LastCheckpoint(ModelCheckpoint):
    """Rewrites ``checkpoints/last.ckpt`` after every epoch: the state to resume from.

    (ModelCheckpoint's own ``save_last`` only refreshes last.ckpt when a new
    best checkpoint is written, so it would lag behind the real last epoch.)
    """

    def __init__(self) -> None:
        super().__init__(filename="last", monitor=None, save_top_k=1, enable_version_counter=False)


class SpsnnCLI(LightningCLI):
    """LightningCLI for spiking classifiers; see the module docstring."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for name, target in DATA_LINKS.items():
            parser.link_arguments(f"data.{name}", target, apply_on="instantiate")
        parser.add_class_arguments(RunOptions, "run")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val_acc",
                "checkpoint.mode": "max",
                "checkpoint.save_top_k": 1,
                "checkpoint.save_last": False,
                "checkpoint.filename": "best-epoch{epoch:03d}-val_acc{val_acc:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_lightning_class_args(LayoutPlots, "layout_plots")

    # ----------------------------------------------------------- options
    def _run_options(self) -> RunOptions:
        options = self._get(self.config_init, "run")
        if isinstance(options, RunOptions):
            return options
        return RunOptions(**dict(options))

    def _run_name(self) -> str:
        options = self._run_options()
        if options.name:
            return options.name
        configs = self._get(self.config, "config") or []
        configs = [c for c in configs if c is not None]
        if configs:
            return Path(str(configs[-1])).stem
        return "spsnn"

    # --------------------------------------------------------- instantiate
    def instantiate_classes(self) -> None:
        """Builds data, model and trainer; a constructor's error exits like a parse error.

        The message names the config section that failed (``data``,
        ``model``, ``trainer``) and the constructor's own message (which names
        the argument), instead of a traceback through jsonargparse.
        """
        try:
            super().instantiate_classes()
        except (ValueError, TypeError, OSError) as error:
            section = self._failing_section(error)
            message = _constructor_message(str(error))
            self._parser(self.subcommand).error(
                f"could not build `{section}` from the config: {message}"
            )

    def _failing_section(self, error: BaseException) -> str:
        sections = {LightningDataModule: "data", LightningModule: "model", Trainer: "trainer"}
        found = None
        tb = error.__traceback__
        while tb is not None:
            owner = tb.tb_frame.f_locals.get("self")
            for cls, name in sections.items():
                if isinstance(owner, cls):
                    found = name
            if isinstance(owner, Callback) and found != "trainer":
                found = "trainer.callbacks"
            tb = tb.tb_next
        if found:
            return found
        data = self._get(self.config, "data")
        class_path = getattr(data, "class_path", None)
        if class_path and f"class_path='{class_path}'" in str(error):
            return "data"
        return "config"

    # ----------------------------------------------------------- trainer
    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer_config = self._get(self.config_init, "trainer", default={})
        if trainer_config.get("logger") is None and "logger" not in kwargs:
            kwargs["logger"] = self._default_loggers(trainer_config)
        return super().instantiate_trainer(**kwargs)

    def _default_loggers(self, trainer_config: dict[str, Any]) -> list:
        root = trainer_config.get("default_root_dir") or DEFAULT_ROOT_DIR
        name = self._run_name()
        csv = CSVLogger(save_dir=root, name=name)
        loggers: list = [csv]
        if self._run_options().wandb and self.subcommand == "fit":
            os.environ.setdefault("WANDB_MODE", "offline")
            # Create the CSV run directory before W&B writes into it; CSVLogger
            # warns about (and would clear) a run directory that is not empty.
            _ = csv.experiment
            run_dir = Path(csv.log_dir)
            loggers.append(
                WandbLogger(
                    name=f"{name}/{run_dir.name}",
                    project=self._run_options().wandb_project,
                    save_dir=str(run_dir),
                )
            )
        return loggers

    # ------------------------------------------------------- subcommands
    @staticmethod
    def _weights_only(kwargs: dict[str, Any]) -> dict[str, Any]:
        # Never run code from a checkpoint: plain tensors and containers only.
        if kwargs.get("weights_only") is None:
            kwargs["weights_only"] = True
        return kwargs

    def fit(self, **kwargs: Any) -> None:
        self._fit_started = time.perf_counter()
        self.trainer.fit(**self._weights_only(kwargs))

    def validate(self, **kwargs: Any) -> None:
        self.trainer.validate(**self._weights_only(kwargs))

    def test(self, **kwargs: Any) -> None:
        self.trainer.test(**self._weights_only(kwargs))

    def predict(self, **kwargs: Any) -> None:
        self.trainer.predict(**self._weights_only(kwargs))

    def after_fit(self) -> None:
        """Tests the chosen checkpoint, prints the test accuracy, writes summary.json."""
        options = self._run_options()
        trainer = self.trainer
        if trainer.interrupted or not options.test_after_fit:
            return
        val_acc = _as_float(trainer.callback_metrics.get("val_acc"))
        epochs = trainer.current_epoch
        ckpt_path = None
        if options.test_ckpt == "best_val":
            best = self._get(self.config_init, "checkpoint")
            if not best.best_model_path:
                raise RuntimeError("run.test_ckpt 'best_val' found no best-val_acc checkpoint")
            ckpt_path = best.best_model_path
            val_acc = _as_float(best.best_model_score)
        else:
            last = [c for c in trainer.checkpoint_callbacks if isinstance(c, LastCheckpoint)]
            if last and last[0].best_model_path:
                ckpt_path = last[0].best_model_path
        results = trainer.test(
            self.model, datamodule=self.datamodule, ckpt_path=ckpt_path, weights_only=True
        )
        test_acc = _as_float(results[0].get("test_acc")) if results else None
        best_epoch = None
        if ckpt_path and options.test_ckpt == "best_val":
            best_epoch = torch.load(ckpt_path, map_location="cpu", weights_only=True).get("epoch")
        run_dir = Path(trainer.log_dir or trainer.default_root_dir)  # a collective: all ranks
        if not trainer.is_global_zero:
            return
        summary = {
            "test_acc": test_acc,
            "val_acc": val_acc,
            **model_summary(self.model.net),
            "epochs": epochs,
            "wall_time_s": round(time.perf_counter() - self._fit_started, 2),
            "test_acc_epoch": options.test_ckpt,
            "best_val_epoch": best_epoch,
            "checkpoint": ckpt_path,
            "seed": self._get(self.config, "seed_everything"),
            "run_name": self._run_name(),
            "run_dir": str(run_dir),
        }
        path = write_summary(run_dir / "summary.json", summary)
        which = "best-validation epoch" if options.test_ckpt == "best_val" else "last epoch"
        line = "=" * 72
        print(
            f"\n{line}\n"
            f"spsnn: test_acc = {100 * test_acc:.2f} %  ({which}, {epochs} epochs, "
            f"val_acc = {100 * (val_acc or 0):.2f} %, {summary['n_params']} parameters)\n"
            f"       wall time {summary['wall_time_s']:.1f} s; summary: {path}\n{line}",
            flush=True,
        )
        rank_zero_info(f"summary written to {path}")


def _constructor_message(text: str) -> str:
    """The constructor's own message out of jsonargparse's "Does not validate against any
    of the Union subtypes" wrapper (its first listed error), else ``text`` unchanged."""
    marker = "\nErrors:\n"
    if marker not in text:
        return text
    errors = text.split(marker, 1)[1].split("\nGiven value type:", 1)[0]
    first = errors.split("\n  - ")[0].removeprefix("  - ")
    return "\n".join(line.removeprefix("    ") for line in first.splitlines())


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return float(value.detach().cpu())
    return float(value)


def make_cli(args: list[str] | dict | None = None, *, run: bool = True) -> SpsnnCLI:
    """Builds (and with ``run`` runs) the CLI; ``args`` as on the command line (for Python)."""
    return SpsnnCLI(
        SpikingClassifier,
        LightningDataModule,
        subclass_mode_data=True,
        seed_everything_default=DEFAULT_SEED,
        auto_configure_optimizers=False,
        trainer_defaults={
            "default_root_dir": DEFAULT_ROOT_DIR,
            "deterministic": True,
            "log_every_n_steps": 10,
            "callbacks": [StepSeed(), LastCheckpoint()],
        },
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


#: Subcommands that are not LightningCLI's: name -> (module, function, one-line help).
TOOL_COMMANDS = {
    "export": (
        "lightning_modules.export.cli",
        "export_main",
        "a checkpoint to NIR (integer delays)",
    ),
    "report": ("lightning_modules.report", "main", "tables over seeds from summary.json files"),
}


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``spsnn`` console script.

    ``spsnn export ...`` and ``spsnn report ...`` go to their modules (see
    :data:`TOOL_COMMANDS`); every other subcommand to LightningCLI.
    """
    argv = list(sys.argv[1:] if args is None else args)
    if argv[:1] and argv[0] in TOOL_COMMANDS:
        module, function, _ = TOOL_COMMANDS[argv[0]]
        getattr(importlib.import_module(module), function)(argv[1:])
        return
    if argv in ([], ["-h"], ["--help"]):
        for name, (_, _, text) in TOOL_COMMANDS.items():
            print(f"spsnn {name} --help: {text}")
    make_cli(args)


if __name__ == "__main__":
    main()
