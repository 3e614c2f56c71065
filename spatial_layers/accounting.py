"""Parameter accounting that knows what a spatial layer learns."""

from __future__ import annotations

from typing import NamedTuple

from torch import nn
from torch.nn.utils import parametrize

from spatial_layers.delay import SpatialDelay
from spatial_layers.geometry import NeuronPositions


class ParameterCount(NamedTuple):
    """Trainable numbers of a model, by kind.

    Attributes:
        weights: active synaptic weights of ``SpatialDelay`` layers (masked
            synapses excluded).
        coordinates: neuron coordinates (each shared module counted once).
        free_delays: per-synapse delays of ``delays="free"`` layers (active
            synapses only).
        other: every other trainable parameter (biases, norms, readouts).
        total: the sum of the four.
    """

    weights: int
    coordinates: int
    free_delays: int
    other: int
    total: int


def _stored_weight(layer: SpatialDelay) -> nn.Parameter:
    """The Parameter behind ``layer.weight``, also under a ``torch.nn.utils.parametrize``."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original
    return layer.weight


def count_parameters(model: nn.Module) -> ParameterCount:
    """Counts trainable parameters, a spatial layer's (C_in + C_out) * D coordinates included.

    Example:
        >>> count_parameters(SpatialDelay(700, 256, max_delay=25, dim=2))
        ParameterCount(weights=179200, coordinates=1912, free_delays=0, other=0, total=181112)
    """
    weights = coordinates = free_delays = 0
    counted: set[int] = set()
    for module in model.modules():
        if isinstance(module, SpatialDelay):
            active = int(module.mask.sum())
            weights += active
            counted.add(id(_stored_weight(module)))
            if module.free_delays is not None:
                free_delays += active
                counted.add(id(module.free_delays))
        elif isinstance(module, NeuronPositions) and id(module.coords) not in counted:
            if module.coords.requires_grad:
                coordinates += module.coords.numel()
            counted.add(id(module.coords))
    other = sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in counted)
    total = weights + coordinates + free_delays + other
    return ParameterCount(weights, coordinates, free_delays, other, total)
