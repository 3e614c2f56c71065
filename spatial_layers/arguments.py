"""Checks of plain constructor arguments: one ``ValueError`` line naming the argument.

Python's truthiness and numeric tower let wrong values through silently: the string
``"false"`` is a true flag, ``True`` is the number 1 and ``3.0`` neurons reach ``torch.empty``
as a float. The modules of :mod:`spatial_layers` check their flags, counts and positive
numbers here, at construction, so that such a value is refused at the door, by name.
"""

from __future__ import annotations

import math


def is_number(value: object) -> bool:
    """An int or a float (numpy's float64 is one), not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_flag(name: str, value: object) -> bool:
    """``value`` if it is a bool; ValueError otherwise (``"false"`` and 0 are not flags).

    >>> check_flag("bias", False)
    False
    """
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


def check_count(name: str, value: object, smallest: int, unit: str = "") -> int:
    """``value`` if it is an int (not a bool) >= ``smallest``; ValueError otherwise.

    >>> check_count("dim", 2, 1)
    2
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
        what = f" ({unit})" if unit else ""
        raise ValueError(f"{name} must be an int >= {smallest}{what}, got {value!r}")
    return value


def check_positive(name: str, value: object, unit: str = "") -> float:
    """``value`` as a float if it is a finite number > 0 (not a bool); ValueError otherwise.

    >>> check_positive("velocity", 2)
    2.0
    """
    if not (is_number(value) and math.isfinite(value) and value > 0):
        what = f" ({unit})" if unit else ""
        raise ValueError(f"{name} must be a positive finite number{what}, got {value!r}")
    return float(value)
