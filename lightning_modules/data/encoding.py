"""Pure functions that turn data into spike tensors.

* :func:`latency_encode`: real values in [0, 1] -> one spike per feature at a time
  step that grows linearly with the value (plus an optional bias spike), the usual
  Yin-Yang encoding.
* :func:`event_bin_indices` / :func:`bin_events`: address events (time, unit) -> a
  dense (T, C) count tensor with units pooled by ``channel_bin`` and time pooled into
  bins of ``time_bin_ms``, as DCLS-delays bins the Heidelberg data sets.

Everything here is numpy/torch only and has no state, so it is tested against naive
loops in ``tests/lightning_modules/data/test_encoding.py``.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np
import torch

US_PER_MS = 1000.0
"""Microseconds per millisecond (tonic gives event times in microseconds)."""


def latency_steps(values: np.ndarray | torch.Tensor, *, t_min: float, t_max: float) -> torch.Tensor:
    """Spike step of each value: ``round(t_min + value * (t_max - t_min))``.

    Rounding is half-up (``floor(x + 0.5)``), never truncation.

    Args:
        values: any shape, floats in [0, 1].
        t_min: step (float allowed) of a value 0.
        t_max: step of a value 1; ``t_max >= t_min``.

    Returns:
        int64 tensor of the same shape as ``values``: steps in
        ``[round(t_min), round(t_max)]``.

    >>> latency_steps(np.array([0.0, 0.5, 0.26, 1.0]), t_min=0.0, t_max=10.0).tolist()
    [0, 5, 3, 10]
    """
    if t_max < t_min:
        raise ValueError(f"t_max ({t_max}) must be >= t_min ({t_min})")
    values = torch.as_tensor(values, dtype=torch.float64)
    if values.numel() and (values.min() < 0.0 or values.max() > 1.0):
        raise ValueError(
            f"latency encoding expects values in [0, 1], got range "
            f"[{values.min().item()}, {values.max().item()}]"
        )
    return torch.floor(t_min + values * (t_max - t_min) + 0.5).to(torch.int64)


LatencyRounding = Literal["round", "linear"]
"""How a real spike time lands on the step grid: one 0/1 spike at the nearest step, or
its unit mass split linearly between the two neighbouring steps."""


def latency_encode(
    values: np.ndarray | torch.Tensor,
    *,
    num_steps: int,
    t_min: float,
    t_max: float,
    bias_step: int | None = None,
    rounding: LatencyRounding = "round",
) -> torch.Tensor:
    """One spike per feature at a time that grows linearly with its value.

    Feature ``f`` of sample ``n`` spikes once, at time
    ``t = t_min + values[n, f] * (t_max - t_min)`` (in steps). With ``rounding="round"``
    the spike is a 1 at step ``round(t)`` (half up, see :func:`latency_steps`); with
    ``"linear"`` it is split between steps ``floor(t)`` (mass ``1 - frac``) and
    ``floor(t) + 1`` (mass ``frac``), ``frac = t - floor(t)``, so the input keeps the
    exact time (its mass-weighted step is ``t``) at the price of graded, non-binary
    inputs, as DCLS interpolates delays. Rounding onto S = t_max - t_min steps caps
    what any classifier can learn from the values at a resolution of 1 / S.
    With ``bias_step`` given, one extra input channel (the last one) spikes at that
    fixed step for every sample.

    Args:
        values: (N, F) floats in [0, 1].
        num_steps: T, the number of time steps; every spike must fall in [0, T).
        t_min: time (steps) of a value 0.
        t_max: time (steps) of a value 1.
        bias_step: step of the bias spike, or None for no bias channel.
        rounding: "round" (binary spikes) or "linear" (split between two steps).

    Returns:
        (N, T, F + 1) float32 inputs, or (N, T, F) without a bias channel; every
        channel's mass over time is 1.

    >>> x = latency_encode(np.array([[0.0, 1.0]]), num_steps=4, t_min=1, t_max=3, bias_step=0)
    >>> x.shape
    torch.Size([1, 4, 3])
    >>> x[0].nonzero().tolist()  # (step, channel)
    [[0, 2], [1, 0], [3, 1]]
    >>> latency_encode(np.array([[0.3]]), num_steps=4, t_min=0, t_max=3, rounding="linear")[0, :, 0]
    tensor([0.1000, 0.9000, 0.0000, 0.0000])
    """
    if rounding not in ("round", "linear"):
        raise ValueError(f"rounding must be one of 'round', 'linear', got {rounding!r}")
    values = torch.as_tensor(values)
    if values.ndim != 2:
        raise ValueError(f"values must be (N, F), got shape {tuple(values.shape)}")
    last = math.floor(t_max + 0.5) if rounding == "round" else math.ceil(t_max)
    if t_min < 0 or last > num_steps - 1:
        raise ValueError(
            f"spike times [{t_min}, {t_max}] must land in steps [0, num_steps - 1 = "
            f"{num_steps - 1}] (rounding={rounding!r})"
        )
    if bias_step is not None and not 0 <= bias_step < num_steps:
        raise ValueError(f"bias_step ({bias_step}) must lie in [0, num_steps = {num_steps})")
    n, f = values.shape
    spikes = torch.zeros(n, num_steps, f + (bias_step is not None), dtype=torch.float32)
    if rounding == "round":
        steps = latency_steps(values, t_min=t_min, t_max=t_max)  # (N, F)
        spikes.scatter_(1, steps.unsqueeze(1), 1.0)  # spikes[n, steps[n, f], f] = 1
    else:
        latency_steps(values, t_min=0.0, t_max=0.0)  # validates the value range
        times = t_min + values.to(torch.float64) * (t_max - t_min)  # (N, F)
        low = torch.floor(times)
        frac = times - low
        low = low.to(torch.int64)
        high = torch.clamp(low + 1, max=num_steps - 1)  # frac == 0 wherever it clamps
        spikes.scatter_add_(1, low.unsqueeze(1), (1.0 - frac).float().unsqueeze(1))
        spikes.scatter_add_(1, high.unsqueeze(1), frac.float().unsqueeze(1))
    if bias_step is not None:
        spikes[:, bias_step, f] = 1.0
    return spikes


def num_binned_channels(num_units: int, channel_bin: int) -> int:
    """Channels after pooling ``num_units`` units in groups of ``channel_bin``: ceil(U / k).

    >>> num_binned_channels(700, 5), num_binned_channels(700, 3)
    (140, 234)
    """
    if channel_bin < 1:
        raise ValueError(f"channel_bin must be >= 1, got {channel_bin}")
    return -(-num_units // channel_bin)


def event_bin_indices(
    times_us: np.ndarray,
    units: np.ndarray,
    *,
    time_bin_ms: float,
    num_steps: int,
    channel_bin: int,
    num_units: int = 700,
) -> np.ndarray:
    """Flat (step, channel) bin of every event that falls inside the window.

    Event ``(t, u)`` goes to step ``floor(t / (time_bin_ms * 1000))`` and channel
    ``u // channel_bin``; events at or after ``num_steps * time_bin_ms`` (and at
    negative times) are dropped (:func:`binned_event_indices` counts them).

    Args:
        times_us: (E,) event times in microseconds (tonic's unit), from the sample onset.
        units: (E,) ints in [0, num_units).
        time_bin_ms: width of one time step in milliseconds.
        num_steps: T, the number of time steps kept.
        channel_bin: units pooled into one channel.
        num_units: input units in the recording (700 for SHD/SSC).

    Returns:
        (E',) int64 flat indices ``step * C + channel`` with ``C = ceil(num_units /
        channel_bin)``, E' <= E, in the order of the kept events.
    """
    if time_bin_ms <= 0:
        raise ValueError(f"time_bin_ms must be > 0, got {time_bin_ms}")
    times_us = np.asarray(times_us)
    units = np.asarray(units).astype(np.int64, copy=False)
    if times_us.shape != units.shape or times_us.ndim != 1:
        raise ValueError(
            f"times_us and units must be equal-length 1-D arrays, got "
            f"{times_us.shape} and {units.shape}"
        )
    if units.size and (units.min() < 0 or units.max() >= num_units):
        raise ValueError(f"unit ids must lie in [0, {num_units}), got max {units.max()}")
    return binned_event_indices(
        times_us,
        units,
        time_bin_ms=time_bin_ms,
        num_steps=num_steps,
        channel_bin=channel_bin,
        num_units=num_units,
    )[0]


def bin_events(
    times_us: np.ndarray,
    units: np.ndarray,
    *,
    time_bin_ms: float,
    num_steps: int,
    channel_bin: int,
    num_units: int = 700,
) -> np.ndarray:
    """Dense event counts per (time step, pooled channel).

    ``counts[t, c]`` is the number of events with ``floor(time / time_bin) == t`` and
    ``unit // channel_bin == c`` (see :func:`event_bin_indices`; events after the
    window are dropped). Counts are floats, DCLS-delays style, not clipped to 1.

    Args: as :func:`event_bin_indices`.

    Returns:
        (num_steps, ceil(num_units / channel_bin)) float32 counts.

    >>> bin_events(np.array([0, 9999, 10000, 35000]), np.array([0, 4, 5, 699]),
    ...            time_bin_ms=10.0, num_steps=3, channel_bin=5)[:, :2].tolist()
    [[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    """
    channels = num_binned_channels(num_units, channel_bin)
    flat = event_bin_indices(
        times_us,
        units,
        time_bin_ms=time_bin_ms,
        num_steps=num_steps,
        channel_bin=channel_bin,
        num_units=num_units,
    )
    counts = np.bincount(flat, minlength=num_steps * channels)
    return counts.astype(np.float32).reshape(num_steps, channels)


class LostEvents(NamedTuple):
    """Events that binning could not place in the (T, C) grid, by reason (each event is
    counted once, under the first reason that applies, in this order)."""

    non_finite: int
    """time NaN or +-Inf."""
    outside_units: int
    """unit id outside [0, num_units) (only a transform can make one: files are checked)."""
    before_onset: int
    """time < 0."""
    after_window: int
    """time at or after ``num_steps * time_bin_ms``."""


def binned_event_indices(
    times_us: np.ndarray,
    units: np.ndarray,
    *,
    time_bin_ms: float,
    num_steps: int,
    channel_bin: int,
    num_units: int = 700,
) -> tuple[np.ndarray, LostEvents]:
    """Flat (step, channel) bin of every event that fits the grid, and what did not fit.

    Event ``(t, u)`` goes to step ``floor(t / (time_bin_ms * 1000))`` and channel
    ``u // channel_bin``. An event with a non-finite time, a unit outside
    ``[0, num_units)``, a negative time or a time at or after the window
    ``num_steps * time_bin_ms`` ms is not placed; :class:`LostEvents` counts it, so that
    ``len(flat) + sum(lost) == E`` always.

    Args:
        times_us: (E,) event times in microseconds (tonic's unit), from the sample onset;
            ints or floats.
        units: (E,) integer unit ids.
        time_bin_ms: width of one time step in milliseconds.
        num_steps: T, the number of time steps kept.
        channel_bin: units pooled into one channel.
        num_units: input units in the recording (700 for SHD/SSC).

    Returns:
        (E',) int64 flat indices ``step * C + channel`` in ``[0, T * C)`` with ``C =
        ceil(num_units / channel_bin)``, in the order of the kept events; and the counts
        of the ``E - E'`` events left out.

    >>> flat, lost = binned_event_indices(np.array([0, 15000, -1, 30000]), np.array([7, 1, 2, 3]),
    ...                                   time_bin_ms=10.0, num_steps=3, channel_bin=5)
    >>> flat.tolist(), lost
    ([1, 140], LostEvents(non_finite=0, outside_units=0, before_onset=1, after_window=1))
    """
    if time_bin_ms <= 0:
        raise ValueError(f"time_bin_ms must be > 0, got {time_bin_ms}")
    times_us, units = np.asarray(times_us), np.asarray(units)
    if times_us.shape != units.shape or times_us.ndim != 1:
        raise ValueError(
            f"times_us and units must be equal-length 1-D arrays, got "
            f"{times_us.shape} and {units.shape}"
        )
    if units.dtype.kind not in "iu":
        raise ValueError(f"unit ids must be integers, got {units.dtype}")
    units = units.astype(np.int64, copy=False)
    channels = num_binned_channels(num_units, channel_bin)
    with np.errstate(invalid="ignore"):
        steps_float = np.floor(times_us / (time_bin_ms * US_PER_MS))
    finite = np.isfinite(steps_float)
    in_units = (units >= 0) & (units < num_units)
    # compare as floats: a huge time would overflow an int64 step
    before = finite & in_units & (steps_float < 0)
    after = finite & in_units & (steps_float >= num_steps)
    keep = finite & in_units & ~before & ~after
    lost = LostEvents(
        non_finite=int((~finite).sum()),
        outside_units=int((finite & ~in_units).sum()),
        before_onset=int(before.sum()),
        after_window=int(after.sum()),
    )
    flat = steps_float[keep].astype(np.int64) * channels + units[keep] // channel_bin
    return flat, lost
