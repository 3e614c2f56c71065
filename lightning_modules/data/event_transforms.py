"""tonic event transforms before spsnn's binning: what they receive and must return.

A transform receives one sample's events as tonic's ``SHD``/``SSC`` ``__getitem__``
gives them (:data:`EVENT_DTYPE`: ``t`` int64 microseconds from the onset, ``x`` int64
unit, ``p`` = 1) and must return events of that kind (a 1-D structured array with
fields ``t`` and ``x``); spsnn then bins ``t`` and ``x``. A transform is recorded by
its description (:func:`transform_description`), and random ones draw from numpy's
global generator, seeded around each use (:func:`seeded_numpy`).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
