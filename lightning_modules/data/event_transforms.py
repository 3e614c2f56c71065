"""tonic event transforms before spsnn's binning: what they receive and must return.

A transform receives one sample's events as tonic's ``SHD``/``SSC`` ``__getitem__``
gives them (:data:`EVENT_DTYPE`: ``t`` int64 microseconds from the onset, ``x`` int64
unit, ``p`` = 1) and must return events of that kind (a 1-D structured array with
fields ``t`` and ``x``); spsnn then bins ``t`` and ``x``. A transform is recorded by
its description (:func:`transform_description`); the binned-data cache keys it by what
it computes (:func:`transform_fingerprint`: its code, parameters and the values its code
reads), so that an edited transform is never served the bins of the old one. Random
transforms draw from numpy's global generator, seeded around each use (:func:`seeded_numpy`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import sys
import sysconfig
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tonic.datasets

EVENT_DTYPE = tonic.datasets.hsd.HSD.dtype
"""Structured dtype of the events a transform receives (tonic's HSD: t, x, p)."""


def transform_description(transform: Callable | None) -> str | None:
    """What a transform is, as recorded in checkpoints and cache keys: its ``repr`` on one
    line (tonic's transforms print their parameters), ``module.name`` for a plain function.

    Raises:
        ValueError: not callable, or its ``repr`` is Python's default (``<... at 0x...>``:
            it would differ in every run and not say what the transform does).
    """
    if transform is None:
        return None
    if not callable(transform):
        raise ValueError(
            f"transform must be callable (a tonic transform), got {transform!r} "
            f"({type(transform).__name__})"
        )
    if isinstance(transform, types.FunctionType) and transform.__name__ != "<lambda>":
        return f"{transform.__module__}.{transform.__qualname__}"
    text = " ".join(repr(transform).split())
    if " at 0x" in text or " object at " in text:
        raise ValueError(
            f"transform {text} has no descriptive repr: spsnn records a transform by its repr "
            "(checkpoints, cache keys); use tonic's transforms, a named function, or give "
            "the class a __repr__ that states its parameters"
        )
    return text


def transform_events(
    transform: Callable, events: np.ndarray, description: str, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """``transform(events)`` as (times, units) arrays, checked; a one-line ValueError naming
    the transform and ``where`` otherwise."""
    try:
        out = transform(events)
    except Exception as error:  # a user's callable: any failure is its message, one line
        raise ValueError(
            f"transform {description} failed on {where}: {type(error).__name__}: "
            f"{' '.join(str(error).split())[:160]}"
        ) from None  # the message says why (the CLI shows the root cause)
    names = getattr(getattr(out, "dtype", None), "names", None) or ()
    if not isinstance(out, np.ndarray) or out.ndim != 1 or not {"t", "x"} <= set(names):
        kind = f"{type(out).__name__}" + (f" of shape {out.shape}" if hasattr(out, "shape") else "")
        raise ValueError(
            f"transform {description} returned {kind} for {where}, not events (a 1-D "
            "structured array with fields 't' and 'x'): spsnn bins the events itself "
            "(channel_bin, time_bin_ms, num_steps), so give event transforms, not ToFrame "
            "or other frame/tensor transforms"
        )
    if out["x"].dtype.kind not in "iu" or out["t"].dtype.kind not in "iuf":
        raise ValueError(
            f"transform {description} returned events with t {out['t'].dtype} and x "
            f"{out['x'].dtype} for {where}: x must be integer unit ids, t numbers (µs)"
        )
    return out["t"], out["x"]


class TransformIdentityError(ValueError):
    """A transform whose computation :func:`transform_fingerprint` cannot establish."""


_MAX_DEPTH = 24
"""How deep :func:`transform_fingerprint` follows references (functions calling functions,
objects holding objects) before it gives up on the transform."""


def transform_fingerprint(transform: Callable | None) -> str | None:
    """SHA-256 of what ``transform`` computes, for cache keys: for a function, its
    bytecode and constants (nested functions included), defaults, closure values and the
    globals its code reads (functions followed the same way, modules by name); for an
    object (tonic's transforms are dataclasses), its class's methods and its attributes,
    recursively; plus the Python version (bytecode differs between versions). Editing a
    function's body, a helper it calls, a module constant it reads or a parameter gives
    another fingerprint; moving code to other lines does not.

    Raises:
        TransformIdentityError: the transform holds something whose effect cannot be
            recorded (an open file, a random generator of its own, ...), naming it.
    """
    if transform is None:
        return None
    tree = _identity(transform, "transform", set(), 0)
    text = json.dumps([list(sys.version_info[:2]), tree], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _name(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


_INSTALLED = tuple(
    str(Path(sysconfig.get_path(kind)).resolve())
    for kind in ("stdlib", "platstdlib", "purelib", "platlib")
)


def _installed(obj: object) -> list | None:
    """``["installed", name, version]`` for a function or class of Python's library or an
    installed package (its code changes with the version only), else None (user code,
    followed into)."""
    module_name = str(getattr(obj, "__module__", None))
    module = sys.modules.get(module_name)
    if module is None:  # not imported by name (loaded from a file): followed
        return None
    path = getattr(module, "__file__", None)  # None: built into Python
    if path is not None and not str(Path(path).resolve()).startswith(_INSTALLED):
        return None
    top = sys.modules.get(module_name.partition(".")[0])
    return ["installed", _name(obj), str(getattr(top, "__version__", sys.version_info[:3]))]


def _identity(obj: object, where: str, seen: set[int], depth: int) -> object:
    """Plain data standing for ``obj``'s effect on a computation (see the caller)."""
    if obj is None or isinstance(obj, bool | int | float | complex | str | bytes):
        return repr(obj)
    if isinstance(obj, np.generic | np.dtype | range | slice):
        return repr(obj)
    if isinstance(obj, types.ModuleType):
        return ["module", obj.__name__]
    if isinstance(obj, types.BuiltinFunctionType | np.ufunc | types.MethodWrapperType):
        return ["builtin", _name(obj)]
    if depth > _MAX_DEPTH:
        raise TransformIdentityError(f"{where} is nested too deeply to be recorded")
    if id(obj) in seen:  # a cycle (a recursive function, an object referring to itself)
        return ["again", _name(obj)]
    seen = seen | {id(obj)}
    deeper = depth + 1
    if isinstance(obj, np.ndarray):
        data = np.ascontiguousarray(obj)
        if data.dtype.hasobject:
            return ["array", [_identity(v, f"{where}[...]", seen, deeper) for v in data.flat]]
        return ["array", str(data.dtype), data.shape, hashlib.sha256(data.tobytes()).hexdigest()]
    if isinstance(obj, list | tuple | set | frozenset):
        items = [_identity(v, f"{where}[{i}]", seen, deeper) for i, v in enumerate(obj)]
        if isinstance(obj, set | frozenset):
            items.sort(key=repr)
        return [type(obj).__name__, items]
    if isinstance(obj, dict):
        return ["dict", sorted(
            [repr(k), _identity(v, f"{where}[{k!r}]", seen, deeper)] for k, v in obj.items()
        )]  # fmt: skip
    if isinstance(obj, types.FunctionType | type) and _installed(obj) is not None:
        return _installed(obj)
    if isinstance(obj, types.FunctionType):
        return _function_identity(obj, where, seen, deeper)
    if isinstance(obj, types.CodeType):
        return _code_identity(obj, where, seen, deeper)
    if isinstance(obj, types.MethodType):
        return ["method", _identity(obj.__func__, where, seen, deeper),
                _identity(obj.__self__, f"{where}.__self__", seen, deeper)]  # fmt: skip
    if isinstance(obj, staticmethod | classmethod):
        return [type(obj).__name__, _identity(obj.__func__, where, seen, deeper)]
    if isinstance(obj, property):
        return ["property", _identity(obj.fget, where, seen, deeper)]
    if isinstance(obj, functools.partial):
        return ["partial", _identity(obj.func, f"{where}.func", seen, deeper),
                _identity(obj.args, f"{where}.args", seen, deeper),
                _identity(obj.keywords, f"{where}.keywords", seen, deeper)]  # fmt: skip
    if isinstance(obj, type):
        return _class_identity(obj, where, seen, deeper)
    if "torch" in sys.modules and isinstance(obj, sys.modules["torch"].Tensor):
        return ["tensor", _identity(obj.detach().cpu().numpy(), where, seen, deeper)]
    cls = _class_identity(type(obj), f"{where}'s class", seen, deeper)
    if dataclasses.is_dataclass(obj):
        state = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    elif hasattr(obj, "__dict__"):
        state = vars(obj)
    else:
        raise TransformIdentityError(
            f"{where} is a {_name(type(obj))}, whose state spsnn cannot record"
        )
    return ["object", cls, _identity(state, where, seen, deeper)]


def _code_identity(code: types.CodeType, where: str, seen: set[int], depth: int) -> object:
    consts = [_identity(c, where, seen, depth) for c in code.co_consts]
    return [code.co_code.hex(), consts, code.co_names, code.co_varnames, code.co_freevars]


def _code_names(code: types.CodeType) -> set[str]:
    """The global and attribute names ``code`` and the functions defined in it read."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _function_identity(fn: types.FunctionType, where: str, seen: set[int], depth: int) -> object:
    where = _name(fn)
    cells = [
        _identity(cell.cell_contents, f"{where}'s closure", seen, depth)
        if cell.cell_contents is not None else None
        for cell in fn.__closure__ or ()
    ]  # fmt: skip
    globals_read = {
        name: _identity(fn.__globals__[name], f"{where}'s global {name}", seen, depth)
        for name in sorted(_code_names(fn.__code__))
        if name in fn.__globals__
    }
    return [
        "function",
        where,
        _code_identity(fn.__code__, where, seen, depth),
        _identity(fn.__defaults__, f"{where}'s defaults", seen, depth),
        _identity(fn.__kwdefaults__, f"{where}'s defaults", seen, depth),
        cells,
        globals_read,
    ]


def _class_identity(cls: type, where: str, seen: set[int], depth: int) -> object:
    """A class by its name and the code of its methods, or by its package's version for
    Python's and installed packages' classes (:func:`_installed`)."""
    if _installed(cls) is not None:
        return _installed(cls)
    members = {
        name: _identity(value, f"{_name(cls)}.{name}", seen, depth)
        for name, value in sorted(vars(cls).items())
        if isinstance(value, types.FunctionType | staticmethod | classmethod | property)
    }
    bases = [_identity(base, where, seen, depth) for base in cls.__bases__ if base is not object]
    return ["class", _name(cls), members, bases]


@contextmanager
def seeded_numpy(seed: int) -> Iterator[None]:
    """numpy's global random state seeded with ``seed`` inside, restored after (tonic's
    random transforms draw from it)."""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)
