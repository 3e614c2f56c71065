"""The ``spsnn`` command: one entry point, a subcommand per job.

- ``fit``, ``validate``, ``test``, ``predict``: LightningCLI with spsnn's defaults
  (:mod:`~lightning_modules.cli.lightning`);
- ``export``: a checkpoint as a NIR graph (:mod:`~lightning_modules.cli.export`);
- ``report``: tables over seeds from runs' ``summary.json`` files
  (:mod:`~lightning_modules.cli.report`).

``spsnn --help`` lists them; ``spsnn COMMAND --help`` gives a command's options.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys

from lightning_modules.cli.lightning import SpsnnCLI, make_cli

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


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``spsnn`` console script."""
    argv = list(sys.argv[1:] if args is None else args)
    if not argv or argv[0] in ("-h", "--help"):
        print(overview(), end="")
        if not argv:
            sys.exit(2)
        return
    if argv[0] == "--version":
        print(f"spsnn {importlib.metadata.version('spsnn')}")
        return
    _, module, function = COMMANDS.get(argv[0], (None, None, None))
    if module is not None:
        getattr(importlib.import_module(module), function)(argv[1:])
        return
    make_cli(args)


__all__ = ["COMMANDS", "SpsnnCLI", "main", "make_cli", "overview"]
