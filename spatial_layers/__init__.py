"""spatial_layers: spiking-network layers whose synaptic delays come from neuron coordinates.

Plain PyTorch (no Lightning): positions, delay kernels, the delayed layer in
sequence and streaming mode (snnTorch style with ``init_hidden=True``; ``reset``
and ``detach`` for a network's per-step state), LIF neurons and parameter
accounting.
"""

from spatial_layers.accounting import ParameterCount, count_parameters
from spatial_layers.delay import SpatialDelay, SpatialDelayCell, delay_layers, use_kernel
from spatial_layers.functional import DelayState, delayed_linear, delayed_step
from spatial_layers.geometry import NeuronPositions, distance_to_delay, pairwise_distance
from spatial_layers.kernels import delay_kernel, round_delays
from spatial_layers.neurons import (
    Leaky,
    LeakyParameters,
    leaky_integrate,
    leaky_sequence,
    leaky_step,
)
from spatial_layers.recurrent import RecurrentSpatialLIF
from spatial_layers.streaming import detach, reset

__all__ = [
    "DelayState",
    "Leaky",
    "LeakyParameters",
    "NeuronPositions",
    "ParameterCount",
    "RecurrentSpatialLIF",
    "SpatialDelay",
    "SpatialDelayCell",
    "count_parameters",
    "delay_kernel",
    "delay_layers",
    "delayed_linear",
    "delayed_step",
    "detach",
    "distance_to_delay",
    "leaky_integrate",
    "leaky_sequence",
    "leaky_step",
    "pairwise_distance",
    "reset",
    "round_delays",
    "use_kernel",
]
