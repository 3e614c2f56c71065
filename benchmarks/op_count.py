"""Dispatched ops of a training step: the launch budget of ``train_step.py`` and its test.

On a GPU an eager training step of a small spiking network is bound by kernel launches,
not arithmetic. :class:`OpCounter` counts what a step dispatches, as a device-independent
measure of that: every ATen op that reaches a kernel (a ``TorchDispatchMode``; views,
which launch nothing, are left out) and every Triton kernel launch, one each. A custom op
(``spsnn::leaky_forward``) counts once, whatever it runs inside; a Triton launch inside it
is not counted a second time. Under ``TRITON_INTERPRET=1`` (no GPU) Triton's interpreter
copies every argument to the host with ATen ops of its own: those are the interpreter's
emulation of one launch and are not counted, so the count is the one a GPU would see.

Run as a script, it counts one step (the second: the first creates Adam's state) of the
SHD-shape network (B = 8, T = 100, 140-256-256-20, 25 taps, Gaussian kernels, batch norm,
dropout 0.4) per neuron family: ``adlif`` with learnable constants may dispatch at most
1.3x the ops of ``lif`` (issue 23; ``tests/benchmarks/test_op_count.py``)::

    TRITON_INTERPRET=1 python benchmarks/op_count.py            # Triton backend, no GPU
    python benchmarks/op_count.py --backend torch --families lif cuba adlif

As a library::

    with OpCounter() as counter:
        loss = step()
    counter.total, counter.by_op.most_common(10)
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from lightning_modules.classifier import adam_implementation
from spatial_layers.networks import SpatialSNN

#: The SHD shape of the launch budgets.
SHD_SHAPE = dict(steps=100, batch=8, inputs=140, hidden=256, outputs=20, taps=25)
#: The ratio issue 23 allows: adlif's ops over lif's.
FAMILY_RATIO = 1.3

#: The counter that Triton launches report to (one at a time).
_ACTIVE: list[OpCounter] = []


class OpCounter(TorchDispatchMode):
    """Counts ATen ops (views excluded) and Triton launches while active.

    Attributes:
        by_op: ``Counter`` of op names (``"triton:<kernel>"`` for Triton launches).
    """

    def __init__(self) -> None:
        super().__init__()
        self.by_op: collections.Counter[str] = collections.Counter()
        self._inside_op = 0

    @property
    def total(self) -> int:
        return sum(self.by_op.values())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view and not self._inside_op:
            self.by_op[func.__name__] += 1
        self._inside_op += 1
        try:
            return func(*args, **(kwargs or {}))
        finally:
            self._inside_op -= 1

    def launch(self, name: str) -> None:
        """A Triton kernel was launched (counted unless inside a counted op)."""
        if not self._inside_op:
            self.by_op[f"triton:{name}"] += 1

    def __enter__(self):
        _hook_triton()
        _ACTIVE.append(self)
        return super().__enter__()

    def __exit__(self, *exc):
        _ACTIVE.remove(self)
        return super().__exit__(*exc)


def _launcher_classes() -> list[type]:
    """The classes whose ``run`` launches a Triton kernel (compiled and interpreted)."""
    try:
        from triton.runtime import interpreter, jit
    except ImportError:
        return []
    return [jit.JITFunction, interpreter.InterpretedFunction]


_PATCHED: set[type] = set()


def _hook_triton() -> None:
    """Wraps the Triton launchers' ``run`` once per process, so that a launch reports to
    the active :class:`OpCounter` and the interpreter's host copies are not counted."""
    for cls in _launcher_classes():
        if cls not in _PATCHED:
            cls.run = _counted_run(cls.run)
            _PATCHED.add(cls)


def _counted_run(run: Callable) -> Callable:
    @functools.wraps(run)
    def wrapper(self, *args, **kwargs):
        if not _ACTIVE or kwargs.get("warmup"):
            return run(self, *args, **kwargs)
        counter = _ACTIVE[-1]
        counter.launch(getattr(self, "__name__", type(self).__name__))
        # The launch (and the interpreter's argument copies) is one op.
        counter._inside_op += 1
        try:
            return run(self, *args, **kwargs)
        finally:
            counter._inside_op -= 1

    return wrapper


def count_train_step(
    forward: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer
) -> dict[str, collections.Counter[str]]:
    """Ops of one training step, by phase: ``forward`` (the loss), ``backward``, ``optimizer``.

    ``optimizer.zero_grad(set_to_none=True)`` runs before, uncounted (it dispatches nothing).
    """
    optimizer.zero_grad(set_to_none=True)
    with OpCounter() as counter:
        loss = forward()
    phases = {"forward": counter.by_op}
    with OpCounter() as counter:
        loss.backward()
    phases["backward"] = counter.by_op
    with OpCounter() as counter:
        optimizer.step()
    phases["optimizer"] = counter.by_op
    return phases


def family_network(family: str, shape: dict, backend: str, learn: bool = True) -> SpatialSNN:
    """The SHD-shape network with ``family`` neurons (learnable time constants for cuba and
    adlif with ``learn``)."""
    return SpatialSNN(
        shape["inputs"],
        shape["outputs"],
        [shape["hidden"], shape["hidden"]],
        dim=2,
        max_delay=shape["taps"] - 1,
        kernel="gauss",
        batch_norm=True,
        dropout=0.4,
        neuron=family,
        learn_beta=learn and family != "lif",
        backend=backend,
    )


def count_family_step(
    family: str, *, shape: dict = SHD_SHAPE, backend: str = "triton", learn: bool = True
) -> collections.Counter[str]:
    """The ops of one training step (the second) of the ``family`` network, all phases."""
    torch.manual_seed(0)
    net = family_network(family, shape, backend, learn)
    params = list(net.parameters())
    # Adam as the classifier runs it (fused where torch has the kernel).
    optimizer = torch.optim.Adam(params, lr=1e-3, **adam_implementation(params))
    spikes = (torch.rand(shape["steps"], shape["batch"], shape["inputs"]) < 0.05).float()
    labels = torch.randint(shape["outputs"], (shape["batch"],))

    def loss() -> torch.Tensor:
        return F.cross_entropy(net(spikes).mean(0), labels)

    loss().backward()
    optimizer.step()
    phases = count_train_step(loss, optimizer)
    return sum(phases.values(), collections.Counter())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="triton", choices=("torch", "triton"))
    parser.add_argument("--families", nargs="+", default=["lif", "adlif"])
    parser.add_argument("--fixed", action="store_true", help="time constants not learned")
    parser.add_argument("--json", type=Path, help="write the counts here")
    args = parser.parse_args()
    results = {}
    for family in args.families:
        counts = count_family_step(family, backend=args.backend, learn=not args.fixed)
        results[family] = {"total": counts.total(), "ops": dict(counts.most_common())}
    print(f"{'family':8} {'ops':>6} {'/ lif':>7}")
    for family, result in results.items():
        ratio = result["total"] / results["lif"]["total"] if "lif" in results else float("nan")
        print(f"{family:8} {result['total']:6d} {ratio:7.3f}")
    print(f"(budget: adlif / lif <= {FAMILY_RATIO})")
    if args.json:
        args.json.write_text(json.dumps({"shape": SHD_SHAPE, **results}, indent=1))


if __name__ == "__main__":
    main()
