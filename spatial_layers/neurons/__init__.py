"""Spiking neurons over whole (T, B, C) sequences, fused: one autograd node per layer.

As Norse splits its neurons (``norse.torch.functional`` / ``norse.torch.module``), each
family has a parameters NamedTuple, a pure step function (the equations, in its
docstring), a fused multi-step function (:mod:`spatial_layers.ops`: torch and Triton
backends) and a thin module:

- :mod:`~spatial_layers.neurons.leaky`: the LIF of snnTorch's ``Leaky`` (reset by
  subtraction) and the readout's leaky integrator;
- :mod:`~spatial_layers.neurons.recurrent`: the same LIF with delayed recurrence.
"""

from spatial_layers.neurons.leaky import (
    DEFAULT_PARAMETERS,
    Leaky,
    LeakyParameters,
    leaky_integrate,
    leaky_sequence,
    leaky_step,
)
from spatial_layers.neurons.recurrent import recurrent_leaky
from spatial_layers.ops import BACKENDS, Backend, resolve_backend
from spatial_layers.surrogate import ArctanSpike, arctan_slope

__all__ = [
    "BACKENDS",
    "DEFAULT_PARAMETERS",
    "ArctanSpike",
    "Backend",
    "Leaky",
    "LeakyParameters",
    "arctan_slope",
    "leaky_integrate",
    "leaky_sequence",
    "leaky_step",
    "recurrent_leaky",
    "resolve_backend",
]
