"""The step at which :class:`RoundDelays` or :class:`HardwareQAT` switches the network."""

from __future__ import annotations

import math

import lightning as L

from lightning_modules.run_length import planned_steps


def check_switch_fraction(after: float) -> float:
    """``after`` as a float, or ValueError unless it is a fraction of training in [0, 1)."""
    if isinstance(after, bool) or not (isinstance(after, int | float) and 0 <= after < 1):
        raise ValueError(f"after must be a fraction of training in [0, 1), got {after!r}")
    return float(after)


def switch_step(trainer: L.Trainer, after: float, name: str) -> int:
    """The first optimizer step of the last ``1 - after`` of the run
    (``trainer.estimated_stepping_batches``); ValueError naming ``name`` for an endless run."""
    return math.ceil(after * planned_steps(trainer, name))
