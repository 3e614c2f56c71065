"""Checks of plain arguments: one line naming the argument, its value and what it must be.

Python's truthiness and numeric tower let wrong values through silently: the string
``"false"`` is a true flag, ``True`` is the number 1 and ``3.0`` neurons reach ``torch.empty``
as a float. spsnn (the library and the app: its DataModules, callbacks and commands) checks
its flags, counts, seeds and numbers here, at construction, so that such a value is refused
at the door, by name; and sizes whose tensors cannot fit in memory (:func:`check_fits`), by
their size.

A value of the wrong type raises :class:`ArgumentTypeError`, both a ``TypeError`` and a
``ValueError``; a value of the right type out of range raises ``ValueError``. numpy's integers
and floats (a value read from an array, a config or hparams) are ints and numbers here, and
come back as Python's ``int`` and ``float``.
"""

from __future__ import annotations

import functools
import math
import numbers
import os

import torch

MAX_SEED = 2**32 - 1
"""Largest seed every generator spsnn seeds accepts (numpy's ``RandomState`` takes
0..2**32 - 1, as does Lightning's ``seed_everything``)."""


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type: a ``TypeError``, and a ``ValueError`` like every other
    refusal of an argument, so that a caller catching either catches it."""


def _refusal(name: str, value: object, expected: str, right_type: bool) -> ValueError:
    """The one-line error of ``name=value`` that is not ``expected``: a ValueError, an
    :class:`ArgumentTypeError` where the type is wrong."""
    kind = ValueError if right_type else ArgumentTypeError
    return kind(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")


def _unit(unit: str) -> str:
    return f" ({unit})" if unit else ""


def is_number(value: object) -> bool:
    """A real number (an int or a float, numpy's included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_int(value: object) -> bool:
    """An integer (Python's or numpy's), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_flag(name: str, value: object) -> bool:
    """``value`` if it is a bool; :class:`ArgumentTypeError` otherwise (``"false"`` and 0 are
    not flags).

    >>> check_flag("bias", False)
    False
    """
    if not isinstance(value, bool):
        raise _refusal(name, value, "True or False", False)
    return value


def check_count(name: str, value: object, smallest: int | None = None, unit: str = "") -> int:
    """``value`` as an int if it is one (not a bool; numpy's ints are) >= ``smallest``;
    :class:`ArgumentTypeError` for another type, ValueError below ``smallest``.

    >>> check_count("dim", 2, 1)
    2
    """
    right_type = is_int(value)
    if not right_type or (smallest is not None and value < smallest):
        bound = "" if smallest is None else f" >= {smallest}"
        raise _refusal(name, value, f"an int{bound}{_unit(unit)}", right_type)
    return int(value)


def check_seed(name: str, value: object) -> int:
    """``value`` as a seed: an int in ``[0, MAX_SEED]`` (a generator would refuse another one
    only when it is seeded: when a split is built or the first epoch shuffles).

    >>> check_seed("seed", 0)
    0
    """
    seed = check_count(name, value)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must lie in [0, 2**32 - 1] (a seed), got {seed}")
    return seed


def check_number(name: str, value: object, unit: str = "") -> float:
    """``value`` as a float if it is a finite real number (not a bool);
    :class:`ArgumentTypeError` for another type, ValueError for inf or nan.

    >>> check_number("t_max", 40)
    40.0
    """
    if not (is_number(value) and math.isfinite(value)):
        raise _refusal(name, value, f"a finite number{_unit(unit)}", is_number(value))
    return float(value)


def check_positive(name: str, value: object, unit: str = "") -> float:
    """``value`` as a float if it is a finite number > 0 (not a bool);
    :class:`ArgumentTypeError` for another type, ValueError otherwise.

    >>> check_positive("velocity", 2)
    2.0
    """
    if not (is_number(value) and math.isfinite(value) and value > 0):
        raise _refusal(name, value, f"a positive finite number{_unit(unit)}", is_number(value))
    return float(value)


def memory_bytes(device: torch.device | str | None) -> int | None:
    """The memory of ``device`` in bytes (the machine's RAM for the CPU), or None where it is
    not known (``meta``, a device without that query)."""
    device = torch.device("cpu" if device is None else device)
    return _total_memory(device.type, device.index)


@functools.cache  # a device's total memory does not change; layers ask on every forward
def _total_memory(kind: str, index: int | None) -> int | None:
    if kind == "cpu":
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            return None
    if kind == "cuda":
        return torch.cuda.get_device_properties(torch.device(kind, index)).total_memory
    return None


def check_fits(
    what: str, count: int, unit: str, bytes_each: int, device: torch.device | str | None, fix: str
) -> None:
    """MemoryError naming the size when ``count`` ``unit`` of ``bytes_each`` bytes cannot fit
    in ``device``'s memory: at construction, instead of an allocator failure (or the process
    killed while the tensor is filled) later. Nothing is checked where the memory is unknown,
    nor while ``torch.compile`` or ``torch.export`` traces (the sizes may be symbolic there).

    >>> check_fits("NeuronPositions(10, dim=2)", 20, "coordinates", 4, "cpu", "use fewer")
    """
    if torch.compiler.is_compiling():
        return
    needed = count * bytes_each
    available = memory_bytes(device)
    if available is not None and needed > available:
        raise MemoryError(
            f"{what} needs {needed / 2**30:.1f} GiB for its {count} {unit}, more than the "
            f"{available / 2**30:.1f} GiB of {torch.device(device or 'cpu')}: {fix}"
        )
