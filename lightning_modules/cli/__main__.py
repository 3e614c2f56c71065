"""``python -m lightning_modules.cli``: the ``spsnn`` command."""

from lightning_modules.cli import main

main()
