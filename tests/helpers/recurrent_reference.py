"""The recurrent LIF by its definition, the reference of the fused recurrent ops' tests."""

from __future__ import annotations

import torch
from torch import Tensor

from spatial_layers.functional import delayed_step
from spatial_layers.neurons import DEFAULT_PARAMETERS, LeakyParameters, leaky_step


def recurrent_leaky_steps(
    currents: Tensor,
    kernel: Tensor,
    bias: Tensor | None = None,
    params: LeakyParameters = DEFAULT_PARAMETERS,
) -> tuple[Tensor, Tensor]:
    """``recurrent_leaky`` as :func:`~spatial_layers.functional.delayed_step` and
    :func:`~spatial_layers.neurons.leaky_step` in a Python loop over T, differentiated by
    autograd through every step. Args and returns as ``recurrent_leaky`` (no backend)."""
    spikes_prev = currents.new_zeros(currents.shape[1:])
    membrane = torch.zeros_like(spikes_prev)
    history = None
    spikes, membranes = [], []
    for current in currents:
        feedback, history = delayed_step(spikes_prev, kernel, history, bias)
        spikes_prev, membrane = leaky_step(current + feedback, membrane, params)
        spikes.append(spikes_prev)
        membranes.append(membrane)
    return torch.stack(spikes), torch.stack(membranes)
