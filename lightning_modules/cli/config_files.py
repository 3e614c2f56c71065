"""What ``spsnn`` reads from ``--config`` files and the command line before LightningCLI does.

- :func:`check_config_file`: a config is UTF-8 text of at most :data:`MAX_CONFIG_BYTES`
  holding one YAML mapping (an empty file, a list or a bare value is refused naming what it
  holds; jsonargparse says only "Unexpected config") that, aliases expanded, holds at most
  :data:`MAX_CONFIG_VALUES` values. A file of a few hundred bytes with nested aliases
  ("billion laughs") would otherwise take minutes and gigabytes; here it is refused after
  reading its node graph once (aliases share nodes, so counting them costs as much as
  reading the file).
- :func:`integer_literals`: the Trainer options typed ``float | int`` (``limit_train_batches``,
  ...) that the user wrote as integers. LightningCLI parses ``1`` as ``1.0``, which Lightning
  reads as "100 % of the batches", not "one batch".
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Sequence
from pathlib import Path

import yaml
from lightning import Trainer

#: The largest config file read, in bytes.
MAX_CONFIG_BYTES = 1 << 20
#: The most values a config may expand to through YAML aliases.
MAX_CONFIG_VALUES = 100_000
#: What a config file holds, as the refusal of another file says.
CONFIG_SHAPE = "one YAML mapping of sections (seed_everything:, trainer:, model:, data:, run:)"


def check_config_file(path: Path) -> None:
    """Raises ValueError (naming ``path``) unless it is a config spsnn reads (see module doc)."""
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ValueError(
            f"--config {path}: {size} bytes, more than the {MAX_CONFIG_BYTES} a config may have"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"--config {path}: not a text (YAML) file ({error.reason})") from error
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as error:
        message = " ".join(str(error).split())
        raise ValueError(f"--config {path}: not valid YAML ({message})") from error
    if len(nodes) != 1 or not isinstance(nodes[0], yaml.MappingNode):
        raise ValueError(f"--config {path}: {_document_kind(nodes)}, not {CONFIG_SHAPE}")
    values = sum(_expanded_size(node, {}) for node in nodes)
    if values > MAX_CONFIG_VALUES:
        raise ValueError(
            f"--config {path}: its YAML aliases expand to {values} values, more than the "
            f"{MAX_CONFIG_VALUES} a config may hold; write the values out"
        )


def _document_kind(nodes: list[yaml.Node]) -> str:
    """What the YAML documents ``nodes`` are, in words (for a file that is not one mapping)."""
    if not nodes:
        return "empty"
    if len(nodes) > 1:
        return f"{len(nodes)} YAML documents"
    kind = {yaml.SequenceNode: "a list", yaml.ScalarNode: "a single value"}
    return f"holds {kind.get(type(nodes[0]), type(nodes[0]).__name__)}"


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for with every alias expanded (shared nodes counted
    once per reference, each computed once)."""
    key = id(node)
    if key not in sizes:
        sizes[key] = 0  # a node that refers to itself counts once
        children: list = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        sizes[key] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return sizes[key]


def float_or_int_options() -> tuple[str, ...]:
    """The Trainer arguments annotated with both ``int`` and ``float``."""
    options = []
    for name, parameter in inspect.signature(Trainer.__init__).parameters.items():
        kinds = set(typing.get_args(parameter.annotation))
        if {int, float} <= kinds:
            options.append(name)
    return tuple(options)


def integer_literals(argv: Sequence[str], configs: Sequence[Path]) -> dict[str, int]:
    """The Trainer options of :func:`float_or_int_options` written as integers, by name:
    in the ``--config`` files (in order) and then on the command line, the last one winning."""
    options = float_or_int_options()
    written: dict[str, object] = {}
    for path in configs:
        trainer = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("trainer") or {}
        written |= {name: trainer[name] for name in options if name in trainer}
    for index, token in enumerate(argv):
        for name in options:
            flag = f"--trainer.{name}"
            if token == flag and index + 1 < len(argv):
                written[name] = yaml.safe_load(argv[index + 1])
            elif token.startswith(flag + "="):
                written[name] = yaml.safe_load(token.split("=", 1)[1])
    return {
        name: value
        for name, value in written.items()
        if isinstance(value, int) and not isinstance(value, bool)
    }


def replaced_callbacks(configs: Sequence[Path]) -> list[str]:
    """One line per ``--config`` file whose plain ``trainer.callbacks:`` list replaces the
    callbacks that the files before it configured (LightningCLI keeps the last list;
    ``callbacks+:`` appends), naming the callbacks dropped."""
    notes, kept = [], []
    for path in configs:
        trainer = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("trainer") or {}
        if "callbacks" in trainer:
            if kept:
                notes.append(
                    f"{path}: its trainer.callbacks list replaces {', '.join(kept)} of the "
                    "configs before it (write callbacks+: to add to them)"
                )
            kept = _class_names(trainer["callbacks"])
        kept += _class_names(trainer.get("callbacks+") or [])
    return notes


def _class_names(callbacks: object) -> list[str]:
    items = callbacks if isinstance(callbacks, list) else [callbacks]
    return [
        str(item.get("class_path", "?")).rsplit(".", 1)[-1] if isinstance(item, dict) else str(item)
        for item in items
    ]
