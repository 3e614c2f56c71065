"""Spiking neurons over whole (T, B, C) sequences, fused: one autograd node per layer.

As Norse splits its neurons (``norse.torch.functional`` / ``norse.torch.module``), each
family has a parameters NamedTuple, a pure step function (the equations, in its
docstring), a fused multi-step function (:mod:`spatial_layers.ops`: torch and Triton
backends) and a thin module:

- :mod:`~spatial_layers.neurons.leaky`: the LIF of snnTorch's ``Leaky`` (reset by
  subtraction) and the readout's leaky integrator;
- :mod:`~spatial_layers.neurons.synaptic`: current-based LIF (CUBA, snnTorch's
  ``Synaptic``);
- :mod:`~spatial_layers.neurons.adaptive`: adaptive LIF (SE-adLIF);
- :mod:`~spatial_layers.neurons.base`: what they share (per-neuron constants, learnable or
  not; sequence, snnTorch-style step and Norse-style cell forms);
- :mod:`~spatial_layers.neurons.recurrent`: any of them with delayed recurrence.
"""

from spatial_layers.neurons.adaptive import (
    AdaptiveLeaky,
    AdaptiveParameters,
    AdaptiveState,
    adaptive_step,
)
from spatial_layers.neurons.base import NeuronBase, NeuronCell
from spatial_layers.neurons.leaky import (
    DEFAULT_PARAMETERS,
    Leaky,
    LeakyParameters,
    LeakyState,
    leaky_integrate,
    leaky_sequence,
    leaky_step,
)
from spatial_layers.neurons.recurrent import recurrent_leaky, recurrent_neurons
from spatial_layers.neurons.synaptic import (
    Synaptic,
    SynapticParameters,
    SynapticState,
    synaptic_step,
)
from spatial_layers.ops import BACKENDS, Backend, resolve_backend
from spatial_layers.surrogate import ArctanSpike, arctan_slope

__all__ = [
    "BACKENDS",
    "DEFAULT_PARAMETERS",
    "AdaptiveLeaky",
    "AdaptiveParameters",
    "AdaptiveState",
    "ArctanSpike",
    "Backend",
    "Leaky",
    "LeakyParameters",
    "LeakyState",
    "NeuronBase",
    "NeuronCell",
    "Synaptic",
    "SynapticParameters",
    "SynapticState",
    "adaptive_step",
    "arctan_slope",
    "leaky_integrate",
    "leaky_sequence",
    "leaky_step",
    "recurrent_leaky",
    "recurrent_neurons",
    "resolve_backend",
    "synaptic_step",
]
