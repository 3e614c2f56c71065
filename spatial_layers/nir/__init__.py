"""NIR (Neuromorphic Intermediate Representation): a trained network as a graph, and back.

The only part of spsnn that imports ``nir`` (``pip install "spsnn[nir]"``):

- :mod:`~spatial_layers.nir.graph`: :func:`to_nir` / :func:`from_nir` (graph layout and
  conventions in its docstring; integer delays as the ``round`` kernel rounds them),
  :func:`parse_nir`, which describes a graph with what a network has no place for;
- :mod:`~spatial_layers.nir.reader`: validates what it reads;
  :mod:`~spatial_layers.nir.conventions`: what writer and reader agree on;
- :mod:`~spatial_layers.nir.node_maps`: :func:`snntorch_node_map` and
  :func:`norse_node_map`, with which ``nirtorch.nir_to_torch`` runs the graphs (delays
  included) as snnTorch or Norse modules;
- :mod:`~spatial_layers.nir.loihi2`: a graph exported for Loihi 2 as the chip's
  program, and what it uses of the chip.

The network a graph holds is :func:`spatial_layers.networks.deploy.deployment_network`'s.
"""

from spatial_layers.nir.graph import from_nir, graph_summary, parse_nir, to_nir, write_nir
from spatial_layers.nir.node_maps import DelayLine, norse_node_map, snntorch_node_map

__all__ = [
    "DelayLine",
    "from_nir",
    "graph_summary",
    "norse_node_map",
    "parse_nir",
    "snntorch_node_map",
    "to_nir",
    "write_nir",
]
