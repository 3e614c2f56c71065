"""Every code block of the manual does what it shows.

- ```python blocks: the blocks of one page run in order in one namespace, in a
  scratch directory; a failing block fails the page's test.
- ```bash blocks: every ``spsnn`` command names a known subcommand and existing
  recipe files; ``spsnn fit`` commands over recipes parse with the CLI's own parser
  (every option exists and has a valid value), ``spsnn export`` commands with
  export's parser; scripts under ``benchmarks/`` that a block runs exist.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys

import pytest

from tests.helpers.docs import (
    REPO,
    config_paths,
    fenced_blocks,
    is_placeholder,
    pages,
    shell_commands,
)

PAGES = pages()
PAGE_IDS = [str(page.relative_to(REPO)) for page in PAGES]
#: LightningCLI subcommand arguments that the parser of a CLI built without subcommands
#: does not know; they take a value, which the test drops with them.
SUBCOMMAND_ONLY = ("--ckpt_path",)


def run_python_blocks(text: str, name: str) -> int:
    """Runs ``text``'s python blocks in order in one namespace; returns how many ran."""
    namespace: dict = {"__name__": "__main__"}
    blocks = fenced_blocks(text, "python")
    for index, block in enumerate(blocks):
        exec(compile(block, f"{name} (python block {index + 1})", "exec"), namespace)
    return len(blocks)


def page_commands(page) -> list[list[str]]:
    return [
        command
        for block in fenced_blocks(page.read_text(), "bash")
        for command in shell_commands(block)
    ]


def fit_arguments(command: list[str]) -> list[str]:
    """A ``spsnn fit|validate|test|predict`` command's options without the subcommand-only ones."""
    arguments, skip = [], False
    for token in command[1:]:
        if skip:
            skip = False
        elif token in SUBCOMMAND_ONLY:
            skip = True
        else:
            arguments.append(token)
    return arguments


@pytest.fixture(scope="module")
def cli_parser(tmp_path_factory):
    """The parser of the ``spsnn`` LightningCLI (built once; its parse builds nothing)."""
    from lightning_modules.cli import COMMANDS, make_cli

    root = tmp_path_factory.mktemp("cli")
    argv = ["--config", str(REPO / "recipes" / "yinyang.yaml")]
    argv += ["--trainer.default_root_dir", str(root), "--run.wandb", "false"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["spsnn"])
        parser = make_cli(argv, run=False).parser
    return parser, COMMANDS


def check_command(command: list[str], cli_parser) -> list[str]:
    """What is wrong with one ``spsnn`` command (nothing: an empty list)."""
    parser, commands = cli_parser
    if not command or command[0] not in commands:
        return [f"unknown subcommand in spsnn {' '.join(command)}"]
    problems = []
    configs = config_paths(command)
    for path in configs:
        if not is_placeholder(path) and not (REPO / path).is_file():
            problems.append(f"--config {path}: no such file")
    if problems:
        return problems
    if command[0] == "export":
        from lightning_modules.cli.export import build_parser

        try:
            with contextlib.redirect_stderr(io.StringIO()) as err:
                build_parser().parse_args(command[1:])
        except SystemExit:
            problems.append(f"spsnn {' '.join(command)}: {err.getvalue().strip()}")
    elif configs and not any(is_placeholder(path) for path in configs):  # fit, test, ...
        arguments = [
            str(REPO / token) if token in configs else token for token in fit_arguments(command)
        ]
        try:
            with contextlib.redirect_stderr(io.StringIO()) as err:
                parser.parse_args(arguments)
        except SystemExit:
            message = err.getvalue().strip().splitlines()
            problems.append(f"spsnn {' '.join(command)}: {message[-3:]}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_python_blocks(page.read_text(), str(page.relative_to(REPO)))


def test_the_manual_has_python_blocks():
    counts = {
        name: len(fenced_blocks(page.read_text(), "python"))
        for name, page in zip(PAGE_IDS, PAGES, strict=True)
    }
    assert sum(counts.values()) >= 15, counts
    assert counts["README.md"] >= 1


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_spsnn_commands_are_valid(page, cli_parser):
    problems = [p for command in page_commands(page) for p in check_command(command, cli_parser)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_benchmark_scripts_exist(page):
    text = "\n".join(fenced_blocks(page.read_text(), "bash"))
    for path in re.findall(r"benchmarks/[\w/]+\.(?:py|sh)", text):
        assert (REPO / path).is_file(), f"{page.name}: {path} does not exist"


def test_the_recipe_index_gives_every_recipe_its_own_command():
    """recipes/README.md lists each recipe's command as the recipe's first lines give it."""
    index = page_commands(REPO / "recipes" / "README.md")
    for recipe in sorted((REPO / "recipes").glob("*.yaml")):
        header = [
            line.removeprefix("#   spsnn ").split()
            for line in recipe.read_text().splitlines()
            if line.startswith("#   spsnn ")
        ]
        assert header, f"{recipe.name} gives no command"
        for command in header:
            assert command in index, f"{recipe.name}: {' '.join(command)} not in recipes/README.md"


# The checks can fail: a broken block, a missing recipe, an unknown option.


def test_a_failing_python_block_fails():
    text = "```python\nx = 1\n```\n\nprose\n\n```python\nassert x == 2\n```\n"
    with pytest.raises(AssertionError):
        run_python_blocks(text, "planted.md")


def test_blocks_of_a_page_share_one_namespace():
    text = "```python\nx = 1\n```\n\n```python\nassert x == 1\n```\n"
    assert run_python_blocks(text, "planted.md") == 2


def test_a_bad_command_is_reported(cli_parser):
    assert check_command(["fit", "--config", "recipes/no_such.yaml"], cli_parser)
    assert check_command(["fitt", "--config", "recipes/yinyang.yaml"], cli_parser)
    unknown = ["fit", "--config", "recipes/yinyang.yaml", "--model.net.init_args.dimm", "3"]
    assert check_command(unknown, cli_parser)
    assert check_command(["export", "a.ckpt", "b.nir", "--weight_bits", "8"], cli_parser)
    good = ["fit", "--config", "recipes/yinyang.yaml", "--trainer.max_epochs", "5"]
    assert not check_command(good, cli_parser)
