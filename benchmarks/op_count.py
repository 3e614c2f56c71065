"""Dispatched ops of a training step: the launch budget of ``train_step.py`` and its test.

On a GPU an eager training step of a small spiking network is bound by kernel launches,
not arithmetic. :class:`OpCounter` counts what a step dispatches, as a device-independent
measure of that: every ATen op that reaches a kernel (a ``TorchDispatchMode``; views,
which launch nothing, are left out) and every Triton kernel launch, one each. A custom op
(``spsnn::leaky_forward``) counts once, whatever it runs inside; a Triton launch inside it
is not counted a second time. Under ``TRITON_INTERPRET=1`` (no GPU) Triton's interpreter
copies every argument to the host with ATen ops of its own: those are the interpreter's
emulation of one launch and are not counted, so the count is the one a GPU would see.

Usage::

    with OpCounter() as counter:
        loss = step()
    counter.total, counter.by_op.most_common(10)
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

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
