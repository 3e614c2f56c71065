"""How long a run is planned to be: the one place that asks the trainer, and refuses an
endless run for whatever needs its length (schedules, annealing, rewiring, late switches)."""

from __future__ import annotations

import math

import lightning as L


def planned_steps(trainer: L.Trainer, needed_by: str, fix: str = "") -> int:
    """The optimizer steps the run plans (``trainer.estimated_stepping_batches``).

    Raises:
        ValueError: the run has no end; the message names ``needed_by``, the trainer
            options that end it, and ``fix`` (another way out, if any).
    """
    return _finite(trainer.estimated_stepping_batches, needed_by, fix)


def planned_epochs(trainer: L.Trainer, needed_by: str, fix: str = "") -> int:
    """The epochs the run plans (``trainer.max_epochs``); ValueError as :func:`planned_steps`."""
    return _finite(trainer.max_epochs, needed_by, fix)


def _finite(total: float | None, needed_by: str, fix: str) -> int:
    if total is None or not math.isfinite(total) or total < 0:
        raise ValueError(
            f"{needed_by} needs a finite run: set trainer.max_epochs or trainer.max_steps{fix}"
        )
    return int(total)
