"""The ``spsnn`` command: one entry point, a subcommand per job.

- ``fit``, ``validate``, ``test``, ``predict``: LightningCLI with spsnn's defaults
  (:mod:`~lightning_modules.cli.lightning`);
- ``export``: a checkpoint as a NIR graph (:mod:`~lightning_modules.cli.export`);
- ``report``: tables over seeds from runs' ``summary.json`` files
  (:mod:`~lightning_modules.cli.report`);
- ``analyze``: measures of a trained network's layout against null networks, into
  ``analysis.json`` and figures in its run folder (:mod:`~lightning_modules.cli.analyze`).

``spsnn --help`` lists them; ``spsnn COMMAND --help`` gives a command's options.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import sys

import torch

from lightning_modules.cli.debug import DEBUG_VARIABLE, debug_requested, set_debug_flag

#: Every command, with one line of help; a module and function for those that are not
#: LightningCLI's subcommands.
COMMANDS: dict[str, tuple[str, str | None, str | None]] = {
    "fit": ("train a network from recipe configs, then test it", None, None),
    "validate": ("evaluate a checkpoint on the validation split", None, None),
    "test": ("evaluate a checkpoint on the test split", None, None),
    "predict": ("write a checkpoint's predictions of the test split (CSV)", None, None),
    "export": (
        "a checkpoint as a NIR graph with integer delays (--target loihi2 for the chip)",
        "lightning_modules.cli.export",
        "export_main",
    ),
    "report": (
        "tables over seeds from the summary.json files of runs",
        "lightning_modules.cli.report",
        "main",
    ),
    "analyze": (
        "measures of a trained layout (wiring, graph vs nulls, space, function) -> analysis.json",
        "lightning_modules.cli.analyze",
        "main",
    ),
}

#: The extra of spsnn that installs an optional package (the training stack: "train").
EXTRAS = {
    "nir": "nir",
    "nirtorch": "nir",
    "snntorch": "interop",
    "norse": "interop",
    "networkx": "analysis",
}

OVERVIEW = """\
spsnn {version}: spatial spiking neural networks. Every neuron has learnable coordinates;
a synapse's delay is the distance between its neurons over a conduction velocity.
Train, evaluate, export and compare such networks.

usage: spsnn COMMAND [options]        spsnn COMMAND --help: the options of COMMAND

commands:
{commands}

example: spsnn fit --config recipes/yinyang.yaml
"""


def overview() -> str:
    """The text of ``spsnn --help``."""
    width = max(len(name) for name in COMMANDS)
    commands = "\n".join(f"  {name:<{width}}  {text}" for name, (text, _, _) in COMMANDS.items())
    return OVERVIEW.format(version=importlib.metadata.version("spsnn"), commands=commands)


def __getattr__(name: str):
    """``make_cli`` and ``SpsnnCLI``, imported on first use (they import Lightning)."""
    if name in ("SpsnnCLI", "make_cli"):
        from lightning_modules.cli import lightning

        return getattr(lightning, name)
    raise AttributeError(f"module 'lightning_modules.cli' has no attribute {name!r}")


#: Errors a user can cause (a value, a file, a setting, a size, a learning rate that
#: diverges): one line on stderr and exit status 2, without a traceback.
USER_ERRORS = (ValueError, OSError, FloatingPointError, MemoryError)
#: The module of Lightning's ``MisconfigurationException``: a Trainer option or setup that
#: Lightning refuses (``max_epochs=-5``, an accelerator this machine lacks) is a user's error.
LIGHTNING_EXCEPTIONS = "lightning.fabric.utilities.exceptions"


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors that :func:`main` reports as the user's (status 2): :data:`USER_ERRORS`,
    CUDA out of memory, and Lightning's ``MisconfigurationException`` once Lightning is
    imported (only a command that imported it can raise it)."""
    lightning = sys.modules.get(LIGHTNING_EXCEPTIONS)
    refusals = (lightning.MisconfigurationException,) if lightning is not None else ()
    return (*USER_ERRORS, torch.OutOfMemoryError, *refusals)


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``spsnn`` console script.

    An error a user can cause (:func:`user_errors`, a missing optional package, an unknown
    command) ends the command with one line on stderr and exit status 2; any other error
    with one line that says it is spsnn's fault, and status 1. ``SPSNN_DEBUG=1``
    or ``--debug`` shows the traceback instead.
    """
    argv = list(sys.argv[1:] if args is None else args)
    set_debug_flag("--debug" in argv)
    if "--debug" in argv:
        argv.remove("--debug")
        args = argv
    try:
        debug = debug_requested()
    except ValueError as error:
        _fail(error)
    if debug:
        _run(args)
        return
    try:
        _run(args)
    except KeyboardInterrupt:
        print("spsnn: interrupted", file=sys.stderr)
        sys.exit(130)
    except ModuleNotFoundError as error:
        package = (error.name or "").split(".")[0]
        if not package or package in ("spatial_layers", "lightning_modules"):
            _fail(error, internal=True)
        extra = EXTRAS.get(package, "train")
        _fail(
            f"the command needs {package!r}, which is not installed: "
            f'pip install "spsnn[{extra}]" ("spsnn[dev]" installs every extra)'
        )
    except Exception as error:  # a bug of spsnn's unless a user's: one line, and how to see more
        _fail(error, internal=not isinstance(error, user_errors()))


def _fail(error: BaseException | str, *, internal: bool = False) -> None:
    """Prints one line for ``error`` and exits: status 2 for a user's error, 1 for spsnn's."""
    text = " ".join(str(error).split()) or type(error).__name__
    if internal:
        text = (
            f"internal error ({type(error).__name__}: {text}); {DEBUG_VARIABLE}=1 shows the "
            "traceback; please report it"
        )
    elif isinstance(error, torch.OutOfMemoryError):
        text = f"out of memory: {text}; use a smaller batch_size or network"
    print(f"spsnn: error: {text}", file=sys.stderr)
    sys.exit(1 if internal else 2)


def check_command(word: str) -> None:
    """Raises ValueError (naming ``word``, the closest command and every command) unless
    ``word`` is one of :data:`COMMANDS` or an option (``-c recipe.yaml fit`` goes on to
    LightningCLI, whose own list of subcommands lacks spsnn's other commands)."""
    if word in COMMANDS or word.startswith("-"):
        return
    close = difflib.get_close_matches(word, COMMANDS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(
        f"unknown command {word!r}{hint}: the commands are {', '.join(COMMANDS)}; "
        "spsnn --help describes them"
    )


def _run(args: list[str] | None) -> None:
    argv = list(sys.argv[1:] if args is None else args)
    if not argv or argv[0] in ("-h", "--help"):
        print(overview(), end="")
        if not argv:
            sys.exit(2)
        return
    if argv[0] == "--version":
        print(f"spsnn {importlib.metadata.version('spsnn')}")
        return
    check_command(argv[0])
    _, module, function = COMMANDS.get(argv[0], (None, None, None))
    if module is not None:
        getattr(importlib.import_module(module), function)(argv[1:])
        return
    from lightning_modules.cli.lightning import make_cli

    make_cli(args)


__all__ = ["COMMANDS", "SpsnnCLI", "main", "make_cli", "overview"]
