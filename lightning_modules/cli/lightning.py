"""``spsnn fit|validate|test|predict``: LightningCLI with spsnn's defaults.

``spsnn fit --config recipes/yinyang.yaml`` trains, then tests the last (or
best-validation) checkpoint, prints the test accuracy and leaves
``summary.json`` and the layout plots in the run directory
``<trainer.default_root_dir>/<run.name>/version_<n>/``. Also ``spsnn
validate|test|predict --config ... --ckpt_path ...``.

What this adds to a plain LightningCLI (wiring only; the work is done by the
callbacks and the classes it configures):

- ``data`` is any LightningDataModule (``class_path`` in the recipe); its
  ``num_inputs`` and ``num_classes`` are linked into the network
  (``model.net.init_args``), its ``num_steps`` into ``model`` (:data:`DATA_LINKS`).
- Loggers: CSV always, plus W&B for ``fit``, ``validate`` and ``test``
  (offline unless the user set ``WANDB_MODE``; its files inside the run
  directory): the run is named ``<recipe>-seed<seed>-version_<n>``, grouped by
  recipe (the seeds of a sweep together), tagged with the ``--config`` files
  and the seed; its config is the whole resolved config (seed, trainer,
  callbacks, model, data: :class:`ConfigToLoggers`); after ``fit`` its summary
  holds ``summary.json``'s fields and the file is saved with the run; the
  learning rate of each parameter group is logged every step.
  ``run.wandb: false`` turns W&B off; a ``trainer.logger`` given in the config
  replaces both.
- Always-on callbacks: ``checkpoint`` (ModelCheckpoint keeping the best
  ``val_acc``, configurable), ``layout_plots`` (PNG plots, configurable),
  ``layout_analysis`` (:class:`~lightning_modules.callbacks.LayoutAnalysis`: the cheap
  layout measures into ``summary.json`` and the loggers; ``enabled: false`` skips them),
  ``summary`` (:class:`~lightning_modules.callbacks.RunSummary`, which writes
  ``summary.json``; ``summary.test_ckpt`` picks the checkpoint the result
  comes from), :class:`~lightning_modules.callbacks.LastCheckpoint` (the
  resume point), :class:`~lightning_modules.callbacks.StepSeed` for exact
  resumes and ``predictions``
  (:class:`~lightning_modules.callbacks.PredictionWriter`): ``spsnn predict``
  writes ``predictions.csv`` (class and per-class readout of every test sample).
- After ``fit``: a test of the summary's checkpoint (``run.test_after_fit``).
- Checkpoints load with ``weights_only=True`` unless told otherwise (the
  default of every subcommand's ``--weights_only``).
- ``--ckpt_path``: a file that is not a checkpoint stops the command with one
  line naming it, before any run directory or W&B run exists; a checkpoint
  whose model hyperparameters differ from the config's stops it with the list
  of differences (LightningCLI would take the checkpoint's, silently), unless
  ``run.use_ckpt_hparams`` asks for the checkpoint's values (then logged).
- A constructor that refuses the config exits like a parse error, with the
  constructor's own message.
- A fixed default seed (42) and ``deterministic`` training.
"""

from __future__ import annotations

import functools
import importlib
import numbers
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, NoReturn

import yaml
from jsonargparse import Namespace
from lightning import LightningDataModule, LightningModule, Trainer
from lightning.fabric.connector import _convert_precision_to_unified_args
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_modules.callbacks import (
    LastCheckpoint,
    LayoutAnalysis,
    LayoutPlots,
    PredictionWriter,
    RunSummary,
    StepSeed,
)
from lightning_modules.callbacks.single_instance import check_callbacks
from lightning_modules.checkpoints import (
    CheckpointFileError,
    checkpoint_hparams,
    hparams_differences,
    input_differences,
    latest_checkpoint,
    read_checkpoint,
    run_of_checkpoint,
)
from lightning_modules.classifier import INPUT_SETTINGS_KEY, SpikingClassifier
from lightning_modules.cli.config_files import (
    check_config_file,
    float_or_int_options,
    integer_literals,
    replaced_callbacks,
)
from lightning_modules.cli.debug import debug_requested
from lightning_modules.cli.parse_errors import one_line
from lightning_modules.outputs import TRIAL_RUN_NOTE, check_writable_folder
from spatial_layers.arguments import MAX_SEED

DEFAULT_SEED = 42
#: Where Lightning keeps the seed it set, for the processes it launches for other ranks.
SEED_VARIABLE = "PL_GLOBAL_SEED"
DEFAULT_ROOT_DIR = "runs"
#: Data module properties -> where the CLI links them (when the classes are built).
DATA_LINKS = {
    "num_inputs": "model.net.init_args.num_inputs",
    "num_classes": "model.net.init_args.num_classes",
    "num_steps": "model.num_steps",
}
#: The links of :data:`DATA_LINKS` the network cannot do without: a data module that lacks
#: one is refused naming it; one that gives any of them as no positive int too
#: (:func:`data_attribute`).
REQUIRED_DATA_ATTRIBUTES = ("num_inputs", "num_classes")
#: Lightning's ``ckpt_path`` values that name no file ("last": the newest in the run's folder).
SPECIAL_CKPT_PATHS = ("last", "best", "hpc", "registry")
#: ``--ckpt_path`` values that ask for no checkpoint (an untrained network), in lower case.
NO_CHECKPOINT = ("none", "null")
#: Subcommands that evaluate a network, and so need its weights.
EVALUATING_SUBCOMMANDS = ("validate", "test", "predict")
#: Packages whose classes a checkpoint's hyperparameters may name (``run.use_ckpt_hparams``).
TRUSTED_PACKAGES = ("spatial_layers", "lightning_modules", "torch", "lightning")
#: Subcommands that log to W&B (``predict`` logs nothing).
WANDB_SUBCOMMANDS = ("fit", "validate", "test")


@dataclass
class RunOptions:
    """What ``spsnn fit`` does around ``Trainer.fit``.

    Args:
        name: run name: runs go to ``<trainer.default_root_dir>/<name>/version_<n>``;
            default: the stem of the last ``--config`` file, else "spsnn".
        wandb: also log to Weights & Biases.
        wandb_project: W&B project name.
        wandb_mode: W&B's mode for this run; default (None): ``WANDB_MODE`` if set, the
            agent's inside a ``wandb agent`` sweep, else ``"offline"`` (no account needed).
        wandb_log_model: after ``fit``, log the final checkpoint to the W&B run as a
            ``model`` artifact.
        test_after_fit: test the checkpoint ``summary.test_ckpt`` names after
            ``fit``, print its accuracy and add it to ``summary.json``.
        use_ckpt_hparams: with ``--ckpt_path``, run with the checkpoint's model
            hyperparameters where the config's differ (each one logged); without
            it, such a difference stops the command.
        trust_checkpoint_classes: with ``use_ckpt_hparams``, import the classes a
            checkpoint names also outside :data:`TRUSTED_PACKAGES`.
    """

    name: str | None = None
    wandb: bool = True
    wandb_project: str = "spsnn"
    wandb_mode: Literal["offline", "online", "disabled"] | None = None
    wandb_log_model: bool = False
    test_after_fit: bool = True
    use_ckpt_hparams: bool = False
    trust_checkpoint_classes: bool = False


class SpsnnArgumentParser(LightningArgumentParser):
    """LightningCLI's parser, with ``--weights_only`` defaulting to True in every subcommand
    (a checkpoint then loads as plain tensors and containers, never as code), whose errors
    are one line (:meth:`error`)."""

    #: The command line being parsed and its ``--config`` files (set by
    #: :meth:`SpsnnCLI.parse_arguments`), for the error line to name where a key is given.
    argv: ClassVar[list[str]] = []
    configs: ClassVar[list[Path]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # ``--trainer.max_epoch 3`` was taken as --trainer.max_epochs with only a deprecation
        # warning (and ``--model.peak`` as --model.peak_lr): an option is its full name.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        """Ends the command with ``spsnn SUBCOMMAND: error: <one line>`` on stderr and exit
        status 2: jsonargparse's nested message made one line naming the key, the value and
        what is valid (:func:`~lightning_modules.cli.parse_errors.one_line`), without the
        usage text (``--help`` gives it). A parser that raises instead of exiting (the
        nested parsers jsonargparse makes for a class's arguments) raises as before;
        ``SPSNN_DEBUG=1`` or ``--debug`` gives jsonargparse's own message and usage."""
        if not self.exit_on_error or debug_requested():
            super().error(message, ex)
        subcommand = self._subcommand_name()
        parser = self._subcommand_parser(subcommand)
        types = {a.dest: getattr(a, "_typehint", None) for a in parser._actions}
        line = one_line(
            message, list(types), SpsnnArgumentParser.argv, SpsnnArgumentParser.configs, types
        )
        command = " ".join(["spsnn", *([subcommand] if subcommand else [])])
        print(f"{command}: error: {line}", file=sys.stderr, flush=True)
        self.exit(2)

    def _subcommand_name(self) -> str | None:
        """The subcommand this parser parses (``spsnn [options] fit``), or that the command
        line names where this is the parser of all of them."""
        words = self.prog.replace("[options]", "").split()
        if len(words) > 1:
            return words[-1]
        action = self._subcommands_action
        names = action._name_parser_map if action is not None else {}
        return next((arg for arg in SpsnnArgumentParser.argv if arg in names), None)

    def _subcommand_parser(self, subcommand: str | None) -> LightningArgumentParser:
        action = self._subcommands_action
        if subcommand is None or action is None:
            return self
        return action._name_parser_map.get(subcommand, self)

    def add_method_arguments(self, *args: Any, **kwargs: Any) -> list[str]:
        added = super().add_method_arguments(*args, **kwargs)
        if "weights_only" in added:
            self.set_defaults(weights_only=True)
        return added


class SpsnnCLI(LightningCLI):
    """LightningCLI for spiking classifiers; see the module docstring."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for name, target in DATA_LINKS.items():
            # Every link checked, the whole data module its source: a bad value is refused
            # naming the DataModule and the attribute, not by the target's type alone.
            required = name in REQUIRED_DATA_ATTRIBUTES
            compute = functools.partial(data_attribute, name=name, target=target, required=required)
            parser.link_arguments("data", target, compute_fn=compute, apply_on="instantiate")
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
        parser.add_lightning_class_args(LayoutAnalysis, "layout_analysis")
        parser.add_lightning_class_args(RunSummary, "summary")
        parser.add_lightning_class_args(PredictionWriter, "predictions")

    # ----------------------------------------------------------- options
    def _section(self, config: Namespace) -> Namespace:
        """The part of ``config`` the subcommand reads (all of it without subcommands)."""
        return config[self.subcommand] if self.subcommand else config

    def _run_options(self) -> RunOptions:
        options = self._section(self.config_init)["run"]
        return options if isinstance(options, RunOptions) else RunOptions(**dict(options))

    def _run_name(self, section: Namespace | None = None) -> str:
        """``run.name``; else, for a checkpoint in a run folder, that run's name (a resume or
        an evaluation joins its run); else the stem of the last ``--config`` file."""
        section = self._section(self.config) if section is None else section
        if section["run"]["name"]:
            return section["run"]["name"]
        ckpt_path = section.get("ckpt_path")
        owner = None if not ckpt_path else run_of_checkpoint(Path(ckpt_path))
        if owner is not None:
            return owner.parent.name
        configs = [c for c in section.get("config") or [] if c is not None]
        return Path(str(configs[-1])).stem if configs else "spsnn"

    def _set_seed(self) -> None:
        """Seeds as LightningCLI does; ``--seed_everything false`` also clears the seed a
        previous run left in this process's environment (:data:`SEED_VARIABLE`), which
        summary.json would record as this run's: the run is unseeded (seed null)."""
        section = self._section(self.config)
        if section.get("seed_everything") is False:
            for name in (SEED_VARIABLE, "PL_SEED_WORKERS"):
                os.environ.pop(name, None)
            _notice("--seed_everything false: an unseeded run (seed null in summary.json)")
            return
        super()._set_seed()

    # ------------------------------------------------------------- files
    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parses as LightningCLI does, refusing before anything is built:

        - a ``--config`` file that is not a config spsnn reads
          (:func:`~lightning_modules.cli.config_files.check_config_file`);
        - ``validate``, ``test`` or ``predict`` without ``--ckpt_path`` (``--ckpt_path
          none`` evaluates the untrained network on purpose, and says so);
          ``--ckpt_path last`` becomes the newest ``last.ckpt`` of the run's name, or is
          refused when there is none;
        - a ``--ckpt_path`` file that is not a checkpoint, or holds non-finite weights;
        - a checkpoint whose model hyperparameters differ from the config's (LightningCLI
          would take the checkpoint's, silently), unless ``run.use_ckpt_hparams`` asks for
          them: then only classes of :data:`TRUSTED_PACKAGES` it names are imported, unless
          ``run.trust_checkpoint_classes``.

        What LightningCLI then reads from the checkpoint is what the config already says.
        ``--seed_everything`` is checked and ``true`` drawn here (:func:`resolved_seed`).
        Trainer options typed ``float | int`` written as integers stay integers; a config
        whose ``trainer.callbacks`` list replaces those of the configs before it says so.
        """
        argv = list(sys.argv[1:] if args is None else args) if not isinstance(args, dict) else []
        configs = _config_files(argv)
        SpsnnArgumentParser.argv, SpsnnArgumentParser.configs = argv, configs
        for path in configs:
            try:
                check_config_file(path)
            except ValueError as error:
                parser.error(str(error))
        super().parse_arguments(parser, args)
        for note in replaced_callbacks(configs):
            _notice(note)
        self._checkpoint: dict | None = None
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        section = self.config[subcommand]
        try:
            section["seed_everything"] = resolved_seed(section["seed_everything"])
        except ValueError as error:
            parser.error(str(error))
        for name, value in integer_literals(argv, configs).items():
            section["trainer"][name] = value
        path = self._resolve_ckpt_path(parser, subcommand, argv)
        if path is None:
            return
        try:
            self._checkpoint = read_checkpoint(path)
        except CheckpointFileError as error:
            parser.error(f"--ckpt_path {error}")
        saved = checkpoint_hparams(self._checkpoint)
        asked = section["model"].as_dict()
        net = asked.get("net")
        if isinstance(net, dict) and isinstance(net.get("class_path"), str):
            net["class_path"] = _import_path(net["class_path"])
        linked = [target.removeprefix("model.") for target in DATA_LINKS.values()]
        taken = section["run"]["use_ckpt_hparams"]
        name = "config" if taken else "command"
        differences = hparams_differences(saved, asked, skip=linked, current_name=name)
        if not differences:
            return
        if not taken:
            self._refuse_checkpoint(path, differences)
        if not section["run"]["trust_checkpoint_classes"]:
            untrusted = _untrusted_classes(saved)
            if untrusted:
                parser.error(
                    f"--ckpt_path {path} names classes outside {TRUSTED_PACKAGES}: "
                    f"{', '.join(untrusted)}; a config or checkpoint names Python classes that "
                    "get imported: add --run.trust_checkpoint_classes true if you trust it"
                )
        self.config = parser.parse_object({subcommand: {"model": saved}}, self.config)
        rank_zero_warn(
            f"spsnn: run.use_ckpt_hparams: the model hyperparameters of {path} replace "
            "the config's: " + "; ".join(differences)
        )

    def _resolve_ckpt_path(
        self, parser: LightningArgumentParser, subcommand: str, argv: list[str]
    ) -> str | None:
        """The checkpoint file the command reads (None: none), with ``none`` and ``last``
        resolved (see :meth:`parse_arguments`); refuses what names no file."""
        section = self.config[subcommand]
        path = section.get("ckpt_path")
        if path is None or str(path).lower() in NO_CHECKPOINT:
            given = _ckpt_argument(argv)
            section["ckpt_path"] = None
            if subcommand in EVALUATING_SUBCOMMANDS:
                if given is None or given.lower() not in NO_CHECKPOINT:
                    parser.error(
                        f"spsnn {subcommand} evaluates a trained network: give --ckpt_path "
                        "(a run's checkpoints/last.ckpt, or 'last' for the newest run of this "
                        "name); --ckpt_path none evaluates the untrained network on purpose"
                    )
                _notice(f"--ckpt_path {given}: {subcommand} runs the untrained network")
            return None
        if path == "last":
            root = Path(section["trainer"].get("default_root_dir") or DEFAULT_ROOT_DIR)
            name = self._run_name(section)
            found = latest_checkpoint(root / name)
            if found is None:
                parser.error(
                    f"--ckpt_path last: no {root / name}/version_*/checkpoints/last.ckpt (the "
                    "newest run named after the last --config, or run.name); give the file"
                )
            section["ckpt_path"] = str(found)
            return str(found)
        if path in SPECIAL_CKPT_PATHS:
            parser.error(
                f"--ckpt_path {path}: spsnn reads checkpoint files: give the file (a run's "
                "checkpoints/best-*.ckpt or last.ckpt), or 'last'"
            )
        return str(path)

    def _check_checkpoint_hparams(self) -> None:
        """Stops the command where the built model's hyperparameters and the checkpoint's
        differ (those the data links in are known only now), or where the data gives
        another input than the checkpoint's network was trained on (``input_settings``)."""
        if self._checkpoint is None:
            return
        path = self._section(self.config)["ckpt_path"]
        differences = hparams_differences(checkpoint_hparams(self._checkpoint), self.model.hparams)
        # What the data links in (num_inputs, ...) is fixed by the data, not by hparams.
        linked = tuple(f"{target}:" for target in DATA_LINKS.values())
        if from_data := [difference for difference in differences if difference.startswith(linked)]:
            self._refuse_input(path, from_data)
        if differences:
            self._refuse_checkpoint(path, differences)
        saved = self._checkpoint.get(INPUT_SETTINGS_KEY)
        current = getattr(self.datamodule, "input_settings", None)
        if (
            isinstance(saved, dict)
            and isinstance(current, dict)
            and (differences := input_differences(saved, current))
        ):
            self._refuse_input(path, differences)
        state = {**self._checkpoint, "state_dict": dict(self._checkpoint["state_dict"])}
        try:  # the checkpoint's tensors against the model built (Lightning loads them later)
            self.model.on_load_checkpoint(state)
            self.model.load_state_dict(state["state_dict"])
        except (RuntimeError, ValueError) as error:
            self.parser.error(f"--ckpt_path {path}: {' '.join(str(error).split())}")

    def _refuse_input(self, path: str, differences: list[str]) -> None:
        self.parser.error(
            f"--ckpt_path {path} holds a network trained on another input than this "
            f"command's data gives: {'; '.join(differences)}; give the data settings "
            "it was trained with (its run's config.yaml)"
        )

    def _refuse_checkpoint(self, path: str, differences: list[str]) -> None:
        path = Path(path)
        config = path.parent.parent / "config.yaml"
        own = f"its run's own config ({config})" if config.is_file() else "its run's own config"
        self.parser.error(
            f"--ckpt_path {path} holds a model with other hyperparameters than this command "
            f"asks for: {'; '.join(differences)}; give {own}, changing only trainer options "
            "such as --trainer.max_epochs, or add --run.use_ckpt_hparams true to run with the "
            "checkpoint's values (to train these weights under another recipe on purpose, "
            "see 'Checkpoints and resuming' in docs/training.md)"
        )

    # --------------------------------------------------------- instantiate
    def instantiate_classes(self) -> None:
        """Builds data, model and trainer; a constructor's error exits like a parse error.

        The message is the constructor's own (it names the argument), found
        through the exception's chain (jsonargparse raises its own error ``from``
        the constructor's when a subclass fails), after the config key of the
        object whose constructor refused (:func:`_refusing_key`).
        """
        try:
            super().instantiate_classes()
        except (ValueError, TypeError, OSError, MemoryError) as error:
            while error.__cause__ is not None:
                error = error.__cause__
            key = _refusing_key(error, self._section(self.config))
            where = f"{key}: " if key else ""
            self.parser.error(f"could not build the run from the config: {where}{error}")

    # ----------------------------------------------------------- trainer
    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, after what can be checked before a logger makes the run folder:
        the checkpoint against the built model and data, the callbacks against each other
        (their ``check_peers``), and a writable ``default_root_dir``. Options the Trainer
        refuses (Lightning's ``MisconfigurationException``) exit like a parse error, leaving
        no run folder."""
        self._check_checkpoint_hparams()
        trainer_config = self._section(self.config_init).get("trainer") or {}
        callbacks = [*(trainer_config.get("callbacks") or []), *self.trainer_defaults["callbacks"]]
        try:
            check_callbacks(callbacks)
        except ValueError as error:
            self.parser.error(f"trainer.callbacks: {error}")
        root = Path(trainer_config.get("default_root_dir") or DEFAULT_ROOT_DIR)
        existing = next(
            path for path in (root.absolute(), *root.absolute().parents) if path.exists()
        )
        try:
            check_writable_folder(existing, f"--trainer.default_root_dir {root}")
        except ValueError as error:
            self.parser.error(str(error))
        for name in float_or_int_options():  # an integer given stays one (jsonargparse: float)
            given = self._section(self.config)["trainer"].get(name)
            if isinstance(given, int) and not isinstance(given, bool):
                kwargs[name] = given
        if trainer_config.get("logger") is None and "logger" not in kwargs:
            kwargs["logger"] = self._default_loggers(trainer_config)
        try:
            trainer = super().instantiate_trainer(**kwargs)
        except MisconfigurationException as error:  # max_epochs=-5, an absent accelerator...
            _remove_made_folders(getattr(self, "_made_run_dir", None), existing)
            self.parser.error(f"trainer: {' '.join(str(error).split())}")
        swapped = _swapped_precision(
            self._section(self.config)["trainer"].get("precision"), trainer
        )
        if swapped is not None:
            _remove_made_folders(getattr(self, "_made_run_dir", None), existing)
            self.parser.error(swapped)
        # LearningRateMonitor refuses a trainer without loggers; one the user added is kept
        monitored = any(isinstance(c, LearningRateMonitor) for c in trainer.callbacks)
        if trainer.loggers and not monitored:
            trainer.callbacks.append(LearningRateMonitor(logging_interval="step"))
        return trainer

    def _default_loggers(self, trainer_config: dict[str, Any]) -> list:
        root = trainer_config.get("default_root_dir") or DEFAULT_ROOT_DIR
        name = self._run_name()
        csv = CSVLogger(save_dir=root, name=name)
        loggers: list = [csv]
        options = self._run_options()
        if options.wandb and self.subcommand in WANDB_SUBCOMMANDS:
            mode = wandb_mode(options.wandb_mode)
            if mode is not None:
                os.environ["WANDB_MODE"] = mode
            # Create the CSV run directory before W&B writes into it; CSVLogger
            # warns about (and would clear) a run directory that is not empty.
            _ = csv.experiment
            self._made_run_dir = Path(csv.log_dir)
            loggers.append(self._wandb_logger(name, Path(csv.log_dir)))
        return loggers

    def _wandb_logger(self, recipe: str, run_dir: Path) -> WandbLogger:
        """W&B logger of this run: ``<recipe>-seed<seed>-<version>``, grouped by recipe,
        tagged with the ``--config`` files and the seed, its files in ``run_dir``."""
        section = self._section(self.config)
        seed = section.get("seed_everything")
        seeded = isinstance(seed, int) and not isinstance(seed, bool)
        configs = [Path(str(c)).stem for c in section.get("config") or [] if c is not None]
        tags = [*dict.fromkeys(configs), *([f"seed{seed}"] if seeded else [])]
        return ResolvedConfigWandbLogger(
            name="-".join([recipe, *([f"seed{seed}"] if seeded else []), run_dir.name]),
            group=recipe,
            tags=tags,
            job_type=self.subcommand,
            project=self._run_options().wandb_project,
            save_dir=str(run_dir),
        )

    # ------------------------------------------------------- subcommands
    def before_fit(self) -> None:
        """Has ``fit`` check the test split's data too when the run tests after it."""
        self.model.stages_after_fit = ("test",) if self._run_options().test_after_fit else ()

    def after_fit(self) -> None:
        """Tests the summary's checkpoint and prints the test accuracy (``run.test_after_fit``),
        then closes the W&B run with the summary."""
        trainer = self.trainer
        (summary,) = [c for c in trainer.callbacks if isinstance(c, RunSummary)]
        trial = bool(trainer.fast_dev_run)
        if not trainer.interrupted and self._run_options().test_after_fit:
            trainer.test(
                self.model,
                datamodule=self.datamodule,
                ckpt_path=summary.test_checkpoint(trainer),
                weights_only=True,
                verbose=not trial,  # a trial's accuracy is no result: not shown
            )
            if trainer.is_global_zero:
                _print_trial(trainer) if trial else _print_result(summary)
        if self._run_options().wandb_log_model and trainer.is_global_zero:
            _log_model(trainer, summary)
        _finish_wandb(trainer, summary)
        _note_trial(trainer)

    def after_validate(self) -> None:
        _finish_wandb(self.trainer)
        _note_trial(self.trainer)

    def after_test(self) -> None:
        _finish_wandb(self.trainer)
        _note_trial(self.trainer)

    def after_predict(self) -> None:
        _note_trial(self.trainer)
        (writer,) = [c for c in self.trainer.callbacks if isinstance(c, PredictionWriter)]
        if self.trainer.is_global_zero and writer.path is not None:
            print(f"spsnn: predictions written to {writer.path}", flush=True)


class ConfigToLoggers(SaveConfigCallback):
    """LightningCLI's ``config.yaml`` in the run directory, and the same resolved config
    (seed, trainer, callbacks, model, data, run options) as the config of every W&B run."""

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        config = self.resolved()
        # Lightning calls this on rank zero only: trainer.log_dir (a broadcast) would hang.
        loggers = trainer.loggers
        log_dir = getattr(loggers[0], "log_dir", None) if loggers else None
        path = Path(log_dir or trainer.default_root_dir) / self.config_filename
        if self.save_to_log_dir and path.is_file():
            path.write_text(yaml.safe_dump(config, sort_keys=False))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update(config, allow_val_change=True)

    def resolved(self) -> dict[str, Any]:
        """The resolved config as plain data, with the Trainer options typed ``float | int``
        as they were given (the parser's dump writes an integer ``1`` as ``1.0``)."""
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        trainer = config.get("trainer") or {}
        given = self.config.get("trainer") or {}
        for name in float_or_int_options():
            if isinstance(given.get(name), int) and not isinstance(given.get(name), bool):
                trainer[name] = given[name]
        return config


class ResolvedConfigWandbLogger(WandbLogger):
    """WandbLogger whose run config is the resolved CLI config alone (:class:`ConfigToLoggers`
    writes it): Lightning's flattened copy of the model's and data module's hyperparameters
    would put keys such as the data module's split ``seed`` beside ``seed_everything``."""

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Logs nothing: the run config is the CLI's resolved config."""


def data_attribute(data: object, *, name: str, target: str, required: bool = True) -> int | None:
    """``data.<name>``, which the CLI links into ``target``; a ValueError naming the data
    module, the attribute and the fix when it is missing (None where not ``required``:
    absent or None) or not a positive int (before the model is built)."""
    owner = type(data).__qualname__
    if not required and getattr(data, name, None) is None:
        return None
    if not hasattr(data, name):
        raise ValueError(
            f"data: {owner} has no attribute {name!r}, which spsnn links into {target}: "
            f"define {name} on the DataModule (an int set in __init__, or a property)"
        )
    value = getattr(data, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"data: {owner}.{name} is {value!r}, which spsnn links into {target}: it must be "
            "an int >= 1, known when the DataModule is built (before setup)"
        )
    return int(value)


def resolved_seed(seed: bool | int) -> bool | int:
    """The ``--seed_everything`` a run uses: ``true`` becomes a random seed (said on stderr;
    Lightning's ``seed_everything()`` would take 0 every time), a process Lightning launched
    for another rank takes rank zero's (:data:`SEED_VARIABLE`); ``false`` and an int in
    ``[0, MAX_SEED]`` stay; another int is a ValueError naming the option."""
    if seed is True:
        inherited = os.environ.get(SEED_VARIABLE)
        if inherited is not None and os.environ.get("LOCAL_RANK", "0") != "0":
            return int(inherited)
        drawn = random.SystemRandom().randint(0, MAX_SEED)
        _notice(f"--seed_everything true: drew seed {drawn} (in config.yaml and summary.json)")
        return drawn
    if seed is not False and not 0 <= seed <= MAX_SEED:
        raise ValueError(
            f"--seed_everything {seed}: a seed is an int from 0 to {MAX_SEED}, or true for a "
            "random one (false: no seeding)"
        )
    return seed


def wandb_mode(asked: str | None) -> str | None:
    """The ``WANDB_MODE`` a run sets: ``run.wandb_mode`` if given; else nothing when the
    user set ``WANDB_MODE`` or the run is started by a ``wandb agent`` (its runs must reach
    the sweep); else ``"offline"``, so that nothing needs an account."""
    if asked is not None:
        return asked
    if "WANDB_MODE" in os.environ or "WANDB_SWEEP_ID" in os.environ:
        return None
    return "offline"


def _log_model(trainer: Trainer, summary: RunSummary) -> None:
    """Logs the run's final checkpoint (``last.ckpt``) to its W&B run as a ``model`` artifact
    (``run.wandb_log_model``): the run keeps its name, group, tags and folder."""
    checkpoint = summary.summary.get("checkpoint")
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and checkpoint:
            log_artifact(logger.experiment, Path(checkpoint), "model")


def log_artifact(run: Any, path: Path, kind: str) -> None:
    """Logs the file ``path`` to the W&B ``run`` as an artifact of type ``kind``, named
    ``<kind>-<run id>`` (a new version each time)."""
    import wandb

    artifact = wandb.Artifact(f"{kind}-{run.id}", type=kind)
    artifact.add_file(str(path))
    run.log_artifact(artifact)


def _finish_wandb(trainer: Trainer, summary: RunSummary | None = None) -> None:
    """Puts ``summary.json``'s fields into the W&B summary and saves the file with the run;
    then finishes the run, so that a later CLI call in this process starts its own."""
    for logger in trainer.loggers:
        if not isinstance(logger, WandbLogger):
            continue
        run = logger.experiment
        if summary is not None and summary.path is not None:
            run.summary.update(summary.summary)
            run.save(str(summary.path), base_path=str(summary.path.parent), policy="now")
        run.finish()


def _refusing_key(error: BaseException, config: Namespace) -> str | None:
    """The config key of the object whose constructor raised ``error`` (``model.net.init_args``,
    ``data.init_args``, ``model``, ...), or None where none is found.

    The outermost constructor in the traceback is the one the parser called; its class is
    matched against the config's ``class_path`` entries (and the model's own class).
    """
    traceback = error.__traceback__
    while traceback is not None:
        frame = traceback.tb_frame
        built = frame.f_locals.get("self") if frame.f_code.co_name == "__init__" else None
        if built is not None:
            return _config_key(type(built), config)
        traceback = traceback.tb_next
    return None


def _config_key(cls: type, config: Namespace) -> str | None:
    """Where in ``config`` an object of ``cls`` is configured."""
    name = f"{cls.__module__}.{cls.__qualname__}"
    flat = config.as_dict() if isinstance(config, Namespace) else dict(config)
    stack = [("", flat)]
    while stack:
        prefix, tree = stack.pop()
        if isinstance(tree, dict):
            path = tree.get("class_path")
            if isinstance(path, str) and _import_path(path) == name:
                return f"{prefix}init_args"
            stack += [(f"{prefix}{key}.", value) for key, value in tree.items()]
        elif isinstance(tree, list):
            stack += [(f"{prefix[:-1]}[{i}].", value) for i, value in enumerate(tree)]
    if issubclass(cls, LightningModule):
        return "model"
    return None


def _remove_made_folders(folder: Path | None, existing: Path) -> None:
    """Removes the empty ``folder`` and its empty parents below ``existing`` (the run folder
    made for the loggers before the Trainer refused its options, and the folders made for
    it), so that a refusal leaves no run behind."""
    if folder is None:
        return
    folder = folder.absolute()
    while folder != existing and existing in folder.parents and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _swapped_precision(asked: Any, trainer: Trainer) -> str | None:
    """A refusal where the Trainer runs another precision than ``asked`` (``16`` on a CPU
    runs ``bf16-mixed``, with a warning), which config.yaml would record; None where it
    runs what was asked (its aliases included: ``16`` is ``16-mixed``)."""
    if asked is None:
        return None
    try:
        unified = _convert_precision_to_unified_args(asked)
    except ValueError:
        return None  # Lightning refuses it itself
    ran = getattr(trainer, "precision", unified)
    if ran == unified:
        return None
    return (
        f"trainer.precision {asked}: Lightning would run {ran} on this "
        f"{type(trainer.accelerator).__name__} instead, and config.yaml would say {asked}; "
        f"give --trainer.precision {ran} (or 32-true)"
    )


def _note_trial(trainer: Trainer) -> None:
    """Says that a ``fast_dev_run`` wrote nothing (:data:`TRIAL_RUN_NOTE`)."""
    if trainer.fast_dev_run:
        _notice(TRIAL_RUN_NOTE)


@rank_zero_only
def _notice(text: str) -> None:
    """One line on stderr (rank zero only): what the command does that the user may not expect."""
    print(f"spsnn: {text}", file=sys.stderr, flush=True)


def _ckpt_argument(argv: list[str]) -> str | None:
    """The ``--ckpt_path`` value as written on the command line (the last one), or None."""
    given = None
    for index, token in enumerate(argv):
        if token == "--ckpt_path" and index + 1 < len(argv):
            given = argv[index + 1]
        elif token.startswith("--ckpt_path="):
            given = token.split("=", 1)[1]
    return given


def _untrusted_classes(tree: object) -> list[str]:
    """The ``class_path`` values in ``tree`` outside :data:`TRUSTED_PACKAGES`."""
    found = []
    if isinstance(tree, dict):
        path = tree.get("class_path")
        if isinstance(path, str) and path.split(".")[0] not in TRUSTED_PACKAGES:
            found.append(path)
        for value in tree.values():
            found += _untrusted_classes(value)
    elif isinstance(tree, list):
        for value in tree:
            found += _untrusted_classes(value)
    return found


def _import_path(class_path: str) -> str:
    """``module.Class`` as the class itself names its module (``spatial_layers.SpatialSNN``
    -> ``spatial_layers.networks.snn.SpatialSNN``, what a checkpoint records); unchanged
    when it does not import."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return class_path
    return f"{cls.__module__}.{cls.__qualname__}"


def _config_files(argv: list[str] | tuple[str, ...]) -> list[Path]:
    """The existing files given as ``--config X``, ``--config=X`` or ``-c X`` in ``argv``."""
    paths = [
        value
        for flag, value in zip(argv, [*argv[1:], None], strict=True)
        if flag in ("--config", "-c") and value is not None
    ]
    paths += [arg.removeprefix("--config=") for arg in argv if str(arg).startswith("--config=")]
    return [Path(path) for path in paths if Path(path).is_file()]


def _print_trial(trainer: Trainer) -> None:
    """What a ``fast_dev_run`` did after ``fit`` in place of the result box: no accuracy,
    which a few batches would give and someone could copy as a result."""
    batches = int(trainer.fast_dev_run)
    print(
        f"spsnn: fast_dev_run trial: fit and test ran {batches} batch{'es' * (batches > 1)} "
        "each; no accuracy is reported (a trial's is no result)",
        flush=True,
    )


def _print_result(summary: RunSummary) -> None:
    result = summary.summary
    which = "best-validation epoch" if summary.test_ckpt == "best_val" else "last epoch"
    line = "=" * 72
    test, val = result["test_acc"], result["val_acc"]
    test_text = "no test ran" if test is None else f"test_acc = {100 * test:.2f} %"
    val_text = "no validation ran" if val is None else f"val_acc = {100 * val:.2f} %"
    print(
        f"\n{line}\n"
        f"spsnn: {test_text}  ({which}, {result['epochs']} epochs, {val_text}, "
        f"{result['n_params']} parameters)\n"
        f"       wall time {result['wall_time_s']:.1f} s; summary: "
        f"{summary.path or 'not written'}\n{line}",
        flush=True,
    )


def make_cli(args: list[str] | dict | None = None, *, run: bool = True) -> SpsnnCLI:
    """Builds (and with ``run`` runs) the CLI; ``args`` as on the command line (for Python)."""
    return SpsnnCLI(
        SpikingClassifier,
        LightningDataModule,
        subclass_mode_data=True,
        parser_class=SpsnnArgumentParser,
        seed_everything_default=DEFAULT_SEED,
        auto_configure_optimizers=False,
        trainer_defaults={
            "default_root_dir": DEFAULT_ROOT_DIR,
            "deterministic": True,
            "log_every_n_steps": 10,
            "callbacks": [StepSeed(), LastCheckpoint()],
        },
        save_config_callback=ConfigToLoggers,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )
