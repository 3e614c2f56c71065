"""Checks of plain constructor arguments: one ``ValueError`` line naming the argument.

Python's truthiness and numeric tower let wrong values through silently: the string
``"false"`` is a true flag, ``True`` is the number 1 and ``3.0`` neurons reach ``torch.empty``
as a float. The modules of :mod:`spatial_layers` check their flags, counts and positive
numbers here, at construction, so that such a value is refused at the door, by name; and
sizes whose tensors cannot fit in memory (:func:`check_fits`), by their size.
"""

from __future__ import annotations

import math
import os

import torch


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


def memory_bytes(device: torch.device | str | None) -> int | None:
    """The memory of ``device`` in bytes (the machine's RAM for the CPU), or None where it is
    not known (``meta``, a device without that query)."""
    device = torch.device("cpu" if device is None else device)
    if device.type == "cpu":
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            return None
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return None


def check_fits(
    what: str, count: int, unit: str, bytes_each: int, device: torch.device | str | None, fix: str
) -> None:
    """MemoryError naming the size when ``count`` ``unit`` of ``bytes_each`` bytes cannot fit
    in ``device``'s memory: at construction, instead of an allocator failure (or the process
    killed while the tensor is filled) later. Nothing is checked where the memory is unknown.

    >>> check_fits("NeuronPositions(10, dim=2)", 20, "coordinates", 4, "cpu", "use fewer")
    """
    needed = count * bytes_each
    available = memory_bytes(device)
    if available is not None and needed > available:
        raise MemoryError(
            f"{what} needs {needed / 2**30:.1f} GiB for its {count} {unit}, more than the "
            f"{available / 2**30:.1f} GiB of {torch.device(device or 'cpu')}: {fix}"
        )
