"""The distribution's shape: spatial_layers is a torch-only library, with no import circle.

- An AST scan of every import (function-level and ``TYPE_CHECKING`` ones included):
  ``spatial_layers`` never imports the training stack, ``nir`` only in
  ``spatial_layers/nir/``, and no module of spsnn imports itself through others.
- Every module of ``spatial_layers`` imports in a process where the training stack
  (and, for the core, every optional package) cannot be imported, and a network trains
  a step there: ``pip install spsnn`` (torch and numpy) is enough for the library.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("spatial_layers", "lightning_modules")
#: What the [train] extra installs: never imported by spatial_layers.
TRAINING_STACK = (
    "lightning", "pytorch_lightning", "lightning_fabric", "torchmetrics", "jsonargparse",
    "yaml", "wandb", "tonic", "h5py", "matplotlib", "tqdm", "lightning_modules",
)  # fmt: skip
#: Every optional package: the core (all but spatial_layers.nir) imports with none of them.
OPTIONAL = (
    *TRAINING_STACK, "nir", "nirtorch", "snntorch", "norse", "DCLS", "dcls",
    "onnx", "onnxscript", "onnxruntime",
)  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imported_names(path: Path, name: str, modules: dict | None = None) -> list[str]:
    """Every module ``path`` imports, anywhere in it (absolute names); ``from a import b``
    gives ``a.b`` where that is one of ``modules``, else ``a``."""
    modules = source_modules() if modules is None else modules
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            for alias in node.names:
                found.append(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return found


def project_edges() -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    modules = source_modules()
    return {
        name: {t for t in imported_names(path, name, modules) if t in modules} - {name}
        for name, path in modules.items()
    }


def test_spatial_layers_never_imports_the_training_stack():
    offenders = [
        f"{name} imports {target}"
        for name, path in source_modules().items()
        if name.startswith("spatial_layers")
        for target in imported_names(path, name)
        if target.split(".")[0] in TRAINING_STACK
    ]
    assert offenders == []


def test_nir_is_imported_only_by_the_nir_conversion():
    offenders = [
        name
        for name, path in source_modules().items()
        if any(target.split(".")[0] == "nir" for target in imported_names(path, name))
        and not name.startswith("spatial_layers.nir")
    ]
    assert offenders == []


def test_no_import_circle():
    edges = project_edges()
    circles = []

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            circles.append([*trail[trail.index(node) :], node])
            return
        if node in done:
            return
        for target in sorted(edges[node]):
            visit(target, [*trail, node])
        done.add(node)

    done: set[str] = set()
    for start in sorted(edges):
        visit(start, [])
    assert circles == []


def test_the_scan_sees_a_circle_and_a_forbidden_import(tmp_path, monkeypatch):
    """The scans above can fail: a planted circle and a planted Lightning import are found."""
    package = tmp_path / "spatial_layers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from spatial_layers.b import x\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from spatial_layers.a import y\n"
        "def f():\n    import lightning\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", ("spatial_layers",))
    with pytest.raises(AssertionError, match=r"spatial_layers\.a"):
        test_no_import_circle()
    with pytest.raises(AssertionError, match=r"spatial_layers\.b imports lightning"):
        test_spatial_layers_never_imports_the_training_stack()


#: Makes the blocked packages absent: ``import X`` raises ModuleNotFoundError and
#: ``importlib.util.find_spec(X)`` returns None, as for a package that is not installed.
BLOCKER = """
import sys
BLOCKED = {blocked!r}
for name in BLOCKED:
    sys.modules[name] = None
"""

IMPORT_ALL = """
import importlib, pkgutil, spatial_layers
names = [m.name for m in pkgutil.walk_packages(spatial_layers.__path__, "spatial_layers.")]
names = [n for n in names if {keep}]
for name in names:
    importlib.import_module(name)
loaded = sorted(m for m in BLOCKED if sys.modules.get(m) is not None)
assert not loaded, loaded
print(len(names), "modules")
"""

TRAIN_ONE_STEP = """
import torch
from spatial_layers import SpatialSNN
torch.manual_seed(0)
net = SpatialSNN(4, 3, [8], max_delay=5)
optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
x = (torch.rand(12, 2, 4) < 0.3).float()
before = [p.detach().clone() for p in net.parameters()]
loss = torch.nn.functional.cross_entropy(net(x).mean(0), torch.tensor([0, 2]))
loss.backward()
optimizer.step()
assert all(not torch.equal(b, p) for b, p in zip(before, net.parameters()))
print("trained")
"""


def run_blocked(blocked: tuple[str, ...], code: str) -> str:
    script = textwrap.dedent(BLOCKER.format(blocked=set(blocked))) + textwrap.dedent(code)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_core_imports_and_trains_with_torch_and_numpy_alone():
    keep = "not n.startswith('spatial_layers.nir')"
    out = run_blocked(OPTIONAL, IMPORT_ALL.format(keep=keep) + TRAIN_ONE_STEP)
    assert "trained" in out


def test_every_module_of_spatial_layers_imports_without_the_training_stack():
    # h5py stays: the nir package itself reads and writes graphs with it.
    blocked = tuple(name for name in TRAINING_STACK if name != "h5py")
    out = run_blocked(blocked, IMPORT_ALL.format(keep="True"))
    count = int(out.split()[0])
    assert count >= len([n for n in source_modules() if n.startswith("spatial_layers.")])


def test_the_blocker_blocks():
    with pytest.raises(AssertionError, match=r"import of lightning halted"):
        run_blocked(TRAINING_STACK, "import lightning")
