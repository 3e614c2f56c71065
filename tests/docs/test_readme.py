"""The README's promises: its first two commands, CI runs the second, it stays a front page.

Its Python runs with every other page's (test_code_blocks.py).
"""

from __future__ import annotations

import re

from tests.helpers.docs import REPO, fenced_blocks, pages

README = (REPO / "README.md").read_text()
#: The README is a front page; the manual is docs/.
MAX_README_LINES = 150


def test_first_lines_are_install_and_train_then_test():
    first = fenced_blocks(README, "bash")[0].strip().splitlines()
    assert README.index("```bash") < README.index("\n## ")  # before any section
    install_and_train, test = first
    assert "pip install -c constraints.txt" in install_and_train
    assert "spsnn fit --config recipes/yinyang.yaml" in install_and_train
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command():
    test_command = fenced_blocks(README, "bash")[0].strip().splitlines()[1]
    ci_lines = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert ci_lines[-1] == test_command


def test_readme_is_a_front_page():
    assert len(README.splitlines()) <= MAX_README_LINES
    assert len(fenced_blocks(README, "python")) >= 1


def test_relative_links_of_the_readmes_exist():
    for page in (REPO / "README.md", REPO / "recipes" / "README.md"):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name}: link to {target}"


def test_no_page_cites_issue_numbers():
    for page in pages():
        assert not re.search(r"\bissues? #?\d+", page.read_text(), re.IGNORECASE), page
