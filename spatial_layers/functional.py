"""Pure delayed-synapse operators: sequence mode and streaming step mode.

Both take an *effective kernel* ``kernel`` of shape (C_out, C_in, K) whose tap
k weighs the input from k steps ago (K = max_delay + 1):

.. math:: y_t[b, i] = \\sum_j \\sum_{k=0}^{K-1} \\mathrm{kernel}[i, j, k]\\, x_{t-k}[b, j] + \\mathrm{bias}[i]

with x_t = 0 for t < 0 (causal, zero initial history).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class DelayState(NamedTuple):
    """Streaming state of a delayed connection.

    Attributes:
        history: (B, C_in, K) past inputs, ``history[..., k]`` = x_{t-k}.
    """

    history: Tensor


def delayed_linear(x: Tensor, kernel: Tensor, bias: Tensor | None = None) -> Tensor:
    """Causal delayed linear map over a whole sequence.

    Args:
        x: (T, B, C_in) input, time-major.
        kernel: (C_out, C_in, K) effective kernel, tap k = delay of k steps.
        bias: optional (C_out,).

    Returns:
        (T, B, C_out).
    """
    taps = kernel.shape[-1]
    if taps == 1:
        return F.linear(x, kernel[..., 0], bias)
    # conv1d is a cross-correlation over (B, C_in, T): pad the past with K - 1
    # zeros and flip the taps so that tap k meets x_{t-k}.
    signal = F.pad(x.permute(1, 2, 0), (taps - 1, 0))
    y = F.conv1d(signal, kernel.flip(-1), bias)
    return y.permute(2, 0, 1)


def initial_delay_state(x_t: Tensor, taps: int) -> DelayState:
    """Zero history for a batch shaped like ``x_t`` (B, C_in)."""
    return DelayState(x_t.new_zeros(*x_t.shape, taps))


def delayed_step(
    x_t: Tensor, kernel: Tensor, state: DelayState | None = None, bias: Tensor | None = None
) -> tuple[Tensor, DelayState]:
    """One time step of :func:`delayed_linear`.

    Args:
        x_t: (B, C_in) input at step t.
        kernel: (C_out, C_in, K) effective kernel.
        state: history up to t - 1, or None for an all-zero past.
        bias: optional (C_out,).

    Returns:
        y_t of shape (B, C_out) and the history up to t.
    """
    taps = kernel.shape[-1]
    if state is None:
        state = initial_delay_state(x_t, taps)
    history = torch.cat([x_t[..., None], state.history[..., : taps - 1]], dim=-1)
    y_t = F.linear(history.flatten(1), kernel.flatten(1), bias)
    return y_t, DelayState(history)
