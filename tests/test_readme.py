"""The README's promises: its first two commands, CI runs the second, its Python runs."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_first_lines_are_install_and_train_then_test():
    first = fenced_blocks("bash")[0].strip().splitlines()
    assert README.index("```bash") < README.index("\n## ")  # before any section
    install_and_train, test = first
    assert "pip install -c constraints.txt" in install_and_train
    assert "spsnn fit --config recipes/yinyang.yaml" in install_and_train
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command():
    test_command = fenced_blocks("bash")[0].strip().splitlines()[1]
    ci_lines = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert ci_lines[-1] == test_command


def test_python_examples_run():
    blocks = fenced_blocks("python")
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
