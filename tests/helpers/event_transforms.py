"""A transform as a user writes one: a named function reading a module constant (what
:func:`~lightning_modules.data.event_transforms.transform_fingerprint` records)."""

SHIFT_US = 0
"""Microseconds every event moves by; a test edits it to stand for an edited transform."""


def shift(events):
    """The events, each ``SHIFT_US`` µs later."""
    out = events.copy()
    out["t"] = out["t"] + SHIFT_US
    return out
