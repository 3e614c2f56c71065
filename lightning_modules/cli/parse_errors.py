"""One line for each error jsonargparse raises while parsing ``spsnn fit|validate|test|predict``.

jsonargparse reports a parse error as an indented tree (``Parser key "model.net":`` /
``Problem with given class_path '...':`` / ``Option 'x' is not accepted``), after the
whole usage text; the line a user reads, ``error: Parser key "model.net":``, names
nothing. :func:`one_line` walks that tree down to its innermost problem and says it in
one line: the full config key (``model.net.init_args.hidden_sizes``), the value, what is
valid there (the class's arguments, the section's keys, the type or choices) with the
closest match, and the ``--config`` file that holds the key where the command line does
not give it. A message it does not recognise (spsnn's own refusals) is kept as it is.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PARSER_KEY = re.compile(r'^Parser key "(?P<key>[^"]+)":\s*(?P<rest>.*)$')
CLASS_PATH = re.compile(r"^Problem with given class_path '(?P<path>[^']+)':\s*(?P<rest>.*)$")
NOT_ACCEPTED = re.compile(r"^Option '(?P<name>[^']+)' is not accepted$")
EXPECTED = re.compile(r"^Expected an? (?P<type>.+?)(?:\. Got value: (?P<value>.*))?$")
NOT_OF_TYPE = re.compile(r"^Not of type (?P<type>\w+): (?P<why>.*)$")
UNRECOGNIZED = re.compile(r"^unrecognized arguments: (?P<args>.+)$")
SUBCOMMAND_OPTION = re.compile(
    r"^Subcommand '(?P<sub>[^']+)' does not accept option '(?P<key>[^']+)'$"
)
REQUIRED = re.compile(r"^the following arguments are required: (?P<keys>.+)$")
NO_FILE = re.compile(r"^File does not exist: '(?P<path>[^']+)'$")
#: Lines of jsonargparse's tree that describe, rather than state, a problem.
NOISE = ("Subtypes:", "Given value type:", "Given value:", "Expected a path but")
#: Headings of jsonargparse's tree whose lines below state the problems.
TRANSPARENT = ("Errors:", "Does not validate against any of the Union subtypes")
NO_CLASS = re.compile(r"^(module '[^']+' has no attribute|No module named)")
NONE_TYPE = "<class 'NoneType'>"
#: How a type in jsonargparse's message reads in spsnn's.
TYPE_NAMES = {
    "<class 'int'>": "an int",
    "<class 'float'>": "a float",
    "<class 'bool'>": "true or false",
    "<class 'str'>": "a string",
    NONE_TYPE: "null",
    "<class 'collections.abc.Sequence'>": "a list such as [64, 64]",
    "<class 'list'>": "a list",
    "<class 'dict'>": "a mapping",
    "PositiveFloat": "a float > 0",
    "PositiveInt": "an int > 0",
    "NonNegativeFloat": "a float >= 0",
    "NonNegativeInt": "an int >= 0",
    "ClosedUnitInterval": "a float from 0 to 1",
    "OpenUnitInterval": "a float between 0 and 1",
}


@dataclass
class Node:
    """One line of jsonargparse's message and the lines indented below it."""

    text: str
    children: list[Node] = field(default_factory=list)
    #: Whether the line was an item of a ``- `` list (alternatives of a union).
    item: bool = False


@dataclass
class Problem:
    """The innermost problem of a message: where (key, class), what, and the given value."""

    key: str
    text: str
    class_path: str | None = None
    value: str | None = None
    alternatives: list[str] = field(default_factory=list)


def one_line(
    message: str,
    keys: list[str],
    argv: list[str],
    configs: list[Path],
    types: dict[str, Any] | None = None,
) -> str:
    """``message`` (jsonargparse's, of a parser whose options are ``keys``) as one line.

    ``argv`` and ``configs``: the command line and its ``--config`` files, to say which
    file holds a key the command line does not give; ``types``: the type of each key (a
    class_path that imports nothing is answered with the module's classes of that type).
    A message of another form comes back unchanged.
    """
    first = message.strip().splitlines()[0].strip() if message.strip() else ""
    match = UNRECOGNIZED.match(first)
    if match:
        tokens = match["args"].split()
        options = [token for token in tokens if token.startswith("--")]
        if not options:
            return (
                f"unexpected argument {tokens[0]!r}: options are given as --key value "
                "(a recipe: --config FILE)"
            )
        return _unknown_key(options[0].removeprefix("--").split("=")[0], keys, argv, configs)
    match = SUBCOMMAND_OPTION.match(first)
    if match:
        return _unknown_key(match["key"], keys, argv, configs)
    match = REQUIRED.match(first)
    if match:
        missing = [key.split(".", 1)[1] if "." in key else key for key in match["keys"].split(", ")]
        return (
            f"{' and '.join(missing)} not given: give a recipe (--config recipes/yinyang.yaml) "
            f"or {' and '.join('--' + key for key in missing)}"
        )
    match = PARSER_KEY.match(first)
    if not match:
        return message
    problem = _innermost(_tree(message))
    if problem is None:
        return " ".join(message.split())
    return _describe(problem, argv, configs, types or {})


# ------------------------------------------------------------------- the message tree
def _tree(message: str) -> Node:
    """The indented lines of ``message`` as a tree under a root node."""
    root = Node("")
    stack: list[tuple[int, Node]] = [(-1, root)]
    for line in message.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        item = text.startswith("- ")
        if item:
            text = text[2:].strip()
            indent += 1  # below a "- " item: the lines further in than its dash
        while stack[-1][0] >= indent:
            stack.pop()
        node = Node(text, item=item)
        stack[-1][1].children.append(node)
        stack.append((indent, node))
    return root


def _innermost(node: Node, key: str = "", class_path: str | None = None) -> Problem | None:
    """The deepest problem below ``node``, with the key and class that lead to it."""
    text = node.text
    match = PARSER_KEY.match(text)
    if match:
        inner = match["key"]
        if key:
            inner = f"{key}.init_args.{inner}" if class_path is not None else f"{key}.{inner}"
        key, class_path = inner, None
        text = match["rest"]
    match = CLASS_PATH.match(text)
    if match:
        class_path = match["path"]
        text = match["rest"]
    children = _problems(node)
    given = next(
        (
            c.text.split(":", 1)[1].strip()
            for c in node.children
            if c.text.startswith("Given value:")
        ),
        None,
    )
    alternatives = [
        match["type"]
        for child in children
        if child.item and (match := EXPECTED.match(child.text)) and not child.children
    ]
    if children:
        informative = [c for c in children if c.text != f"Expected a {NONE_TYPE}"] or children
        # a union's alternatives: the one that went deepest (a class's argument) says most
        best = max(informative, key=_depth)
        if best.item and not best.children and len(alternatives) > 1:
            return Problem(key, best.text, class_path, given, alternatives)
        found = _innermost(best, key, class_path)
        if found is not None and found.value is None:
            found.value = given
        return found
    if not text or text.startswith(NOISE + TRANSPARENT):
        return None
    return Problem(key, text, class_path, given)


def _problems(node: Node) -> list[Node]:
    """The children of ``node`` that state problems: a union's "Errors:" list in place of
    its heading, without the lines that describe the union."""
    found = []
    for child in node.children:
        if child.text.startswith(TRANSPARENT):
            found += _problems(child)
        elif not child.text.startswith(NOISE):
            found.append(child)
    return found


def _depth(node: Node) -> int:
    return 1 + max((_depth(child) for child in node.children), default=0)


# ------------------------------------------------------------------- the line
def _describe(problem: Problem, argv: list[str], configs: list[Path], types: dict[str, Any]) -> str:
    key, text = problem.key, problem.text
    match = NOT_ACCEPTED.match(text)
    if match:
        section = f"{key}.init_args" if problem.class_path else key
        name = match["name"]
        takes = _class_arguments(problem.class_path)
        valid = f"{_short(problem.class_path)} takes: {', '.join(takes)}" if takes else ""
        return _located(
            f"{section}.{name}",
            f"{section} has no argument {name!r}{_listing(valid, name, takes)}",
            argv,
            configs,
        )
    if problem.class_path is not None and NO_CLASS.match(text):
        return _located(
            key, _unknown_class(key, problem.class_path, text, types.get(key)), argv, configs
        )
    match = EXPECTED.match(text)
    if match:
        value = match["value"] if match["value"] is not None else problem.value
        types = problem.alternatives or [match["type"]]
        wanted = " or ".join(dict.fromkeys(_type_name(t) for t in types))
        if str(value).strip().lower().lstrip("+-.") in ("inf", "infinity", "nan"):
            wanted = wanted.replace("a float", "a finite float")
        close = _close_choice(value, match["type"])
        return _located(key, f"{key} {value}: expected {wanted}{close}", argv, configs)
    match = NOT_OF_TYPE.match(text)
    if match:
        value = problem.value if problem.value is not None else _given(key, argv)
        wanted = _type_name(match["type"])
        shown = f" {value}" if value is not None else ""
        return _located(key, f"{key}{shown}: expected {wanted} ({match['why']})", argv, configs)
    match = NO_FILE.match(text)
    if match and key == "config":
        return f"--config {match['path']}: no such file"
    return _located(key, f"{key}: {text}", argv, configs)


def _listing(valid: str, name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f" ({valid}{hint})" if valid else (f" (did you mean {close[0]!r}?)" if close else "")


def _unknown_key(key: str, keys: list[str], argv: list[str], configs: list[Path]) -> str:
    """A key that is no option of the command: its first part that names nothing, what the
    section above it holds and the closest of those."""
    parts = key.split(".")
    for depth in range(1, len(parts) + 1):
        prefix = ".".join(parts[:depth])
        if not any(k == prefix or k.startswith(prefix + ".") for k in keys):
            break
    above = ".".join(parts[: depth - 1])
    name = parts[depth - 1]
    names = sorted(
        {
            k.removeprefix(above + ".").split(".")[0] if above else k.split(".")[0]
            for k in keys
            if not above or k.startswith(above + ".")
        }
        - {"help", "print_config", "config"}
    )
    if above:
        valid = f"{above} takes: {', '.join(names)}"
        text = f"{above} has no argument {name!r}{_listing(valid, name, names)}"
    else:
        valid = f"the keys: {', '.join(names)}"
        text = f"{key}: no key {name!r}{_listing(valid, name, names)}"
    return _located(key, text, argv, configs)


def _unknown_class(key: str, class_path: str, why: str, typehint: Any) -> str:
    """A ``class_path`` that names no class: the classes of the key's type in its module
    (all its classes where the type is unknown) and the closest of them."""
    module_name, _, name = class_path.rpartition(".")
    try:
        module = importlib.import_module(module_name) if module_name else None
    except ImportError:
        module = None
    bases = tuple(
        t
        for t in (typing.get_args(typehint) or (typehint,))
        if inspect.isclass(t) and t is not type(None)
    )
    classes = sorted(
        n
        for n, v in (vars(module).items() if module is not None else ())
        if inspect.isclass(v) and not n.startswith("_") and (not bases or issubclass(v, bases))
    )
    close = difflib.get_close_matches(name, classes, n=1)
    valid = f"; {module_name} has: {', '.join(classes)}" if classes else ""
    hint = f"; did you mean {module_name}.{close[0]}?" if close else ""
    return f"{key} {class_path}: no such class ({why}{valid}{hint})"


def _class_arguments(class_path: str | None) -> list[str]:
    """The ``init_args`` the class ``class_path`` takes (empty where it does not import)."""
    if class_path is None:
        return []
    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
        from jsonargparse._parameter_resolvers import get_signature_parameters

        return [parameter.name for parameter in get_signature_parameters(cls, None)]
    except Exception:  # an error message must not fail: fall back to the plain signature
        try:
            return [n for n in inspect.signature(cls).parameters if n not in ("args", "kwargs")]
        except Exception:
            return []


def _short(class_path: str | None) -> str:
    return (class_path or "").rpartition(".")[2]


def _type_name(text: str) -> str:
    text = text.strip()
    if text in TYPE_NAMES:
        return TYPE_NAMES[text]
    choices = _literal_choices(text)
    if choices:
        return "one of " + ", ".join(choices)
    match = re.fullmatch(r"<class '(?:[\w.]+\.)?(\w+)'>", text)
    return f"a {match[1]}" if match else text


def _literal_choices(text: str) -> list[str]:
    match = re.fullmatch(r"typing\.Literal\[(.*)\]", text.strip())
    if not match:
        return []
    return [choice.strip().strip("'\"") for choice in match[1].split(",")]


def _close_choice(value: str | None, type_text: str) -> str:
    choices = _literal_choices(type_text)
    close = difflib.get_close_matches(value or "", choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ------------------------------------------------------------------- where it was given
def _given(key: str, argv: list[str]) -> str | None:
    """The value ``--key`` has on the command line (the last), or None."""
    value = None
    for flag, following in zip(argv, [*argv[1:], None], strict=True):
        if flag == f"--{key}":
            value = following
        elif flag.startswith(f"--{key}="):
            value = flag.split("=", 1)[1]
    return value


def _located(key: str, text: str, argv: list[str], configs: list[Path]) -> str:
    """``text``, after the ``--config`` file that gives ``key`` where the command line
    does not (the last such file: the one that counts)."""
    options = {arg.split("=", 1)[0] for arg in argv if arg.startswith("--")}
    if f"--{key}" in options or f"--{key.replace('.init_args.', '.')}" in options:
        return text
    holders = [path for path in configs if _holds(path, key)]
    return f"--config {holders[-1]}: {text}" if holders else text


def _holds(path: Path, key: str) -> bool:
    try:
        tree: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False
    for part in key.split("."):
        if isinstance(tree, dict) and part in tree:
            tree = tree[part]
        elif part != "init_args":
            return False
    return True
