"""The benchmark scripts of ``benchmarks/`` (scripts, not a package) as modules for the
tests: ``load("op_count")`` imports ``benchmarks/op_count.py`` under the name its sibling
scripts import it by."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str) -> ModuleType:
    """The module of ``benchmarks/<name>.py`` (imported once)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
