"""Griffe extension: spsnn's docstrings (Google sections, Sphinx markup) as Markdown.

The docstrings are written for ``help()`` and doctests: Google-style sections with
Sphinx roles (``:class:`~spatial_layers.SpatialDelay```), ``.. math::`` blocks and
``::`` literal blocks. mkdocstrings renders Markdown, so before griffe parses a
docstring this extension rewrites, outside doctest lines:

- a role ``:class:`~a.b.C``` as the code span ``C`` (``a.b.C`` without the tilde);
- ``:math:`x``` as ``$x$`` and a ``.. math::`` block as a ``$$`` block (arithmatex);
- a paragraph ending in ``::`` and the indented block after it as a fenced code block;
- the section title ``Example:`` as ``Examples:``, and a doctest outside a section
  as a fenced block, so that doctests render as code.

The sources stay as they are (doctests and ``help()`` read them); only the site
sees the Markdown.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc|const):`(~?)([^`]+)`")
MATH_ROLE = re.compile(r":math:`([^`]+)`")
MATH_DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s*(.*)$")


def _role(match: re.Match) -> str:
    tilde, target = match.groups()
    target = re.sub(r"\s+", "", target)  # a role broken over two lines
    if "<" in target and target.endswith(">"):  # :role:`text <target>`
        return f"`{target.split('<')[0].strip()}`"
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], start: int, base: int) -> int:
    """Index after the block of lines indented deeper than ``base`` that starts at ``start``
    (blank lines inside it included, trailing ones not)."""
    end = start
    index = start
    while index < len(lines):
        if lines[index].strip():
            if _indent(lines[index]) <= base:
                break
            end = index + 1
        index += 1
    return end


def _fenced(lines: list[str], start: int, end: int, base: int, fence: str) -> list[str]:
    body = lines[start:end]
    while body and not body[0].strip():
        body = body[1:]
    depth = min((_indent(line) for line in body if line.strip()), default=base)
    pad = " " * base
    inner = [pad + line[depth:] if line.strip() else "" for line in body]
    return [pad + fence, *inner, pad + fence]


def to_markdown(text: str) -> str:
    """``text`` (a docstring) with its Sphinx markup as Markdown (see the module doc)."""
    lines = _inline(text).splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if stripped.startswith(">>>") and _indent(line) == 0:  # a doctest outside a section
            end = index
            while end < len(lines) and lines[end].strip():
                end += 1
            out.extend(["```pycon", *lines[index:end], "```"])
            index = end
            continue
        if stripped.startswith((">>>", "...")):
            out.append(line)
            index += 1
            continue
        math = MATH_DIRECTIVE.match(line)
        if math:
            base = _indent(line)
            end = _block(lines, index + 1, base)
            inline = [" " * (base + 4) + math.group(2)] if math.group(2) else []
            body = inline + lines[index + 1 : end]
            out.extend(_fenced(body, 0, len(body), base, "$$"))
            index = end
            continue
        if stripped.endswith("::") and not stripped.startswith(".."):
            base = _indent(line)
            end = _block(lines, index + 1, base)
            if end > index + 1:
                text_part = line.rstrip()[:-2].rstrip()
                if text_part.strip():
                    out.append(text_part + ":")
                out.append("")
                out.extend(_fenced(lines, index + 1, end, base, "```"))
                index = end
                continue
        if stripped in ("Example:", "Example :"):
            line = line.replace("Example", "Examples", 1)
        out.append(line)
        index += 1
    return "\n".join(out)


def _inline(line: str) -> str:
    return ROLE.sub(_role, MATH_ROLE.sub(lambda m: f"${m.group(1)}$", line))


class SphinxMarkup(griffe.Extension):
    """Rewrites every docstring's Sphinx markup as Markdown before it is parsed."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
