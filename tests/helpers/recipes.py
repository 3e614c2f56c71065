"""Recipes as their first lines say to run them: the --config chain, and the merged config.

A recipe is a base (one --config) or a delta on top of other recipes; its
header holds the command, ``#   spsnn fit --config recipes/a.yaml --config
recipes/b.yaml ...``, and that chain is what these helpers read.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from lightning_modules.cli import make_cli

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
COMMAND = "#   spsnn fit "


def recipe_chain(name: str) -> list[Path]:
    """The --config files of ``name``'s documented command, in order (the recipe last)."""
    lines = [line for line in (RECIPES / name).read_text().splitlines() if line.startswith(COMMAND)]
    assert len(lines) == 1, f"{name} must document one `spsnn fit` command, has {len(lines)}"
    return [RECIPES.parent / path for path in re.findall(r"--config (\S+)", lines[0])]


def config_args(name: str) -> list[str]:
    """``["--config", path, ...]`` for ``name``'s chain."""
    return [arg for path in recipe_chain(name) for arg in ("--config", str(path))]


def flat(config: dict, prefix: str = "") -> dict:
    """A nested config as ``{"model.net.init_args.dim": 2, ...}`` (lists kept whole)."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def cli_parser(root: Path):
    """The CLI's parser, of a CLI built without subcommands (``run=False``)."""
    args = [*config_args("yinyang.yaml"), "--trainer.default_root_dir", str(root)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["spsnn"])
        return make_cli([*args, "--run.wandb", "false"], run=False).parser


def merged(parser, name: str) -> dict:
    """``name``'s chain merged by the CLI's parser (nothing built), flat, without the paths."""
    config = parser.parse_args(config_args(name)).as_dict()
    config.pop("config")
    return flat(config)


def changed(ours: dict, theirs: dict) -> set[str]:
    """Keys whose values differ between two flat configs."""
    return {key for key in ours.keys() | theirs.keys() if ours.get(key) != theirs.get(key)}


def callback_names(config: dict) -> list[str]:
    """Class names of a flat config's ``trainer.callbacks``."""
    return [c["class_path"].rsplit(".", 1)[1] for c in config["trainer.callbacks"]]
