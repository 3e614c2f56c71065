"""Networks of spatial-delay layers: blocks, the SpatialSNN classifier, and their deployed form.

- :mod:`~spatial_layers.networks.population`: :class:`HiddenPopulation` (synapses in,
  batch norm, LIF neurons, delayed recurrence) and :class:`LeakyReadout`;
- :mod:`~spatial_layers.networks.snn`: :class:`SpatialSNN`, the network every recipe
  trains, stacked from those blocks;
- :mod:`~spatial_layers.networks.norm_leaky`: batch norm and LIF as one memory-frugal node;
- :mod:`~spatial_layers.networks.cuda_graphs`: a training step as captured CUDA graphs;
- :mod:`~spatial_layers.networks.deploy`: the network as a neuromorphic target runs it
  (batch norm folded, integer delays, k-bit weights), what the NIR export writes.
"""

from spatial_layers.networks.population import HiddenPopulation, LeakyReadout
from spatial_layers.networks.snn import SNNOutput, SpatialSNN

__all__ = ["HiddenPopulation", "LeakyReadout", "SNNOutput", "SpatialSNN"]
