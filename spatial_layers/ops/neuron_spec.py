"""What every implementation of the neuron-family ops shares: the families, their state and
constant layouts (:mod:`spatial_layers.ops.neurons` has the equations), the static
arguments of an op and their check, the dtype the constants are applied in."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

FAMILIES: tuple[str, ...] = ("lif", "cuba", "adlif")
RESETS: tuple[str, ...] = ("subtract", "zero", "none")
#: State variables (rows of ``state`` and ``traces``) per family.
STATE_COUNT = {"lif": 1, "cuba": 2, "adlif": 2}
#: Per-neuron constants (rows of ``constants``) per family.
CONSTANT_COUNT = {"lif": 1, "cuba": 2, "adlif": 5}


class Spec(NamedTuple):
    """The static (Python) arguments of a neuron op: family, threshold, surrogate slope,
    reset mechanism and timing."""

    family: str
    threshold: float
    alpha: float
    reset: str
    reset_delay: bool


def check_spec(spec: Spec, constants: Tensor, state: Tensor, currents: Tensor) -> None:
    """Raises ValueError for a family, reset or layout the ops do not run."""
    if spec.family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {spec.family!r}")
    if spec.reset not in RESETS:
        raise ValueError(f"reset must be one of {RESETS}, got {spec.reset!r}")
    if spec.family == "adlif" and spec.reset_delay:
        raise ValueError("the adlif family resets at once: reset_delay must be False")
    rows, size = CONSTANT_COUNT[spec.family], currents.shape[-1]
    if constants.shape != (rows, size):
        raise ValueError(
            f"the {spec.family} family takes ({rows}, C) = ({rows}, {size}) constants, "
            f"got {tuple(constants.shape)}"
        )
    expected = (STATE_COUNT[spec.family], *currents.shape[1:])
    if tuple(state.shape) != expected:
        raise ValueError(f"state must have shape (S, B, C) = {expected}, got {tuple(state.shape)}")


def compute_dtype(like: Tensor) -> torch.dtype:
    """The dtype constants are applied in (and backward passes compute in)."""
    return torch.float64 if like.dtype == torch.float64 else torch.float32
