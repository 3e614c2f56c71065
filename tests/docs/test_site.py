"""The documentation site builds with ``mkdocs build --strict`` and without a warning.

Strict mode turns every warning (a broken link, a docstring that griffe cannot
parse, a missing snippet) into a failed build; the test also fails on any line the
build logs at WARNING or ERROR level. Every page and tutorial is in the navigation.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import nbconvert
import pytest
import yaml

from tests.helpers.docs import DOCS, REPO

MKDOCS = Path(sys.executable).with_name("mkdocs")


def nbconvert_share() -> Path:
    """``share/jupyter`` of the environment nbconvert is installed in (its templates).

    Jupyter looks for them under ``sys.prefix``; in a virtual environment layered on
    another one (``.pth`` files) they are under the other one's prefix.
    """
    package = Path(nbconvert.__file__).resolve().parent  # <prefix>/lib/pythonX.Y/site-packages/
    return package.parents[3] / "share" / "jupyter"


def build(site: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    paths = [str(nbconvert_share()), *filter(None, [os.environ.get("JUPYTER_PATH")])]
    env["JUPYTER_PATH"] = os.pathsep.join(paths)
    command = [str(MKDOCS), "build", "--strict", "--config-file", str(REPO / "mkdocs.yml")]
    return subprocess.run(
        [*command, "--site-dir", str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def nav_files(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [f for value in nav.values() for f in nav_files(value)]
    return [f for item in nav for f in nav_files(item)]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    return site, build(site)


def test_site_builds_strict_without_warnings(site):
    folder, result = site
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    problems = [line for line in log.splitlines() if re.match(r"\s*(WARNING|ERROR)\b", line)]
    assert not problems, "\n".join(problems)
    assert (folder / "index.html").is_file()


def test_site_has_every_page(site):
    folder, _ = site
    for page in ("getting-started", "model", "layers", "training", "results", "api/layers"):
        assert (folder / page / "index.html").is_file(), page
    for tutorial in (DOCS / "tutorials").glob("*.py"):
        assert (folder / "tutorials" / tutorial.stem / "index.html").is_file(), tutorial.name
    api = (folder / "api" / "layers" / "index.html").read_text()
    assert 'id="spatial_layers.delay.SpatialDelay"' in api  # rendered from the docstring


def test_every_page_and_tutorial_is_in_the_navigation():
    config = yaml.load((REPO / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    listed = set(nav_files(config["nav"]))
    files = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")}
    files |= {str(path.relative_to(DOCS)) for path in (DOCS / "tutorials").glob("*.py")}
    assert files == listed


def test_a_broken_link_fails_the_build(tmp_path):
    """Strict mode is on: a page with a link to a missing page does not build."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[missing](no_such_page.md)\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: planted\nstrict: true\n")
    result = subprocess.run(
        [str(MKDOCS), "build", "--site-dir", str(tmp_path / "site")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "no_such_page.md" in result.stdout + result.stderr


def load_markup_extension():
    path = DOCS / "_griffe" / "sphinx_markup.py"
    spec = importlib.util.spec_from_file_location("sphinx_markup", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sphinx_markup_becomes_markdown():
    to_markdown = load_markup_extension().to_markdown
    text = "\n".join(
        [
            "See :class:`~spatial_layers.SpatialDelay` and :func:`spatial_layers.reset`,",
            "with :math:`d = x / v`::",
            "",
            "    a -> b",
            "",
            ".. math::",
            "    y = x",
            "",
            "Example:",
            "    >>> 1 + 1",
            "    2",
        ]
    )
    assert to_markdown(text).splitlines() == [
        "See `SpatialDelay` and `spatial_layers.reset`,",
        "with $d = x / v$:",
        "",
        "```",
        "a -> b",
        "```",
        "",
        "$$",
        "y = x",
        "$$",
        "",
        "Examples:",
        "    >>> 1 + 1",
        "    2",
    ]
