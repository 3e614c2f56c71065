"""The manual's pages and their fenced code blocks, as the tests in tests/docs read them.

Pages are README.md, recipes/README.md and every Markdown file under docs/. A fenced
block is three backticks and a language at the start of a line (or indented, inside a
list), up to the closing three backticks at the same indentation.
"""

from __future__ import annotations

import itertools
import re
import shlex
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def pages() -> list[Path]:
    """Every page of the manual: the two READMEs, then docs/**/*.md in path order."""
    return [REPO / "README.md", REPO / "recipes" / "README.md", *sorted(DOCS.rglob("*.md"))]


def fenced_blocks(text: str, language: str) -> list[str]:
    """The bodies of ``text``'s fenced blocks of ``language``, in order, dedented."""
    pattern = rf"^([ \t]*)```{language}[ \t]*\n(.*?)^\1```[ \t]*$"
    return [
        textwrap.dedent(body)
        for _, body in re.findall(pattern, text, flags=re.DOTALL | re.MULTILINE)
    ]


def shell_commands(block: str) -> list[list[str]]:
    """The ``spsnn`` commands of a bash block, each as its arguments after ``spsnn``.

    Continuation lines are joined and comments dropped. A command starts where a shell
    command starts (a line's start, after ``&&``, ``;``, ``|`` or ``do``) with ``spsnn``
    or a path ending in ``/spsnn``, and ends at the next separator or the end of the
    line. ``$name`` shell variables are replaced by ``1``.
    """
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(re.sub(r"\$\w+", "1", line), posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] | None = None
        at_start = True
        for token in [*lexer, ";"]:
            if set(token) <= set(";&|"):
                if command is not None:
                    commands.append(command)
                command, at_start = None, True
            elif command is not None:
                command.append(token)
            elif at_start and (token == "spsnn" or token.endswith("/spsnn")):
                command = []
            else:
                at_start = token in ("do", "then")
    return commands


def config_paths(arguments: list[str]) -> list[str]:
    """The values of every ``--config`` in ``arguments``."""
    return [value for flag, value in itertools.pairwise(arguments) if flag == "--config"]


def is_placeholder(path: str) -> bool:
    """A path the reader fills in (``<recipe>``) or a run makes (``runs/...``)."""
    return "<" in path or path.startswith("runs/")
