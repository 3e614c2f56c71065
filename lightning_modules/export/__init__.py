"""Deployment export: a trained SpatialSNN as a NIR graph with integer delays, and back.

- :mod:`~lightning_modules.export.deploy`: the deployed network (batch norm
  folded, ``round`` kernels, weights quantised by
  :func:`spatial_layers.quantization.quantized_weight`, as in training).
- :mod:`~lightning_modules.export.nir_graph`: :func:`to_nir` / :func:`from_nir`
  (graph layout and conventions in its docstring; integer delays are
  :func:`spatial_layers.round_delays`, as the ``round`` kernel rounds);
  :func:`parse_nir` describes a graph, with what a network has no place for
  (population names, coordinates); :mod:`~lightning_modules.export.nir_reader`
  validates what it reads; :mod:`~lightning_modules.export.conventions` holds
  what both agree on.
- :mod:`~lightning_modules.export.node_maps`: :func:`snntorch_node_map` and
  :func:`norse_node_map`, with which ``nirtorch.nir_to_torch`` runs those graphs
  (delays included) as snnTorch or Norse modules.
- :mod:`~lightning_modules.export.loihi2_report`,
  :mod:`~lightning_modules.export.loihi2_reference`: under ``--target loihi2``,
  what the network uses of the chip, and a numpy model of the chip's integer
  arithmetic that runs the exported file.
- :mod:`~lightning_modules.export.evaluate`, :mod:`~lightning_modules.export.cli`:
  ``spsnn export CKPT OUT.nir [--target loihi2] [--evaluate]``.
"""

from lightning_modules.export.deploy import deployment_network, fold_batch_norm
from lightning_modules.export.nir_graph import (
    from_nir,
    graph_summary,
    parse_nir,
    to_nir,
    write_nir,
)
from lightning_modules.export.node_maps import DelayLine, norse_node_map, snntorch_node_map

__all__ = [
    "DelayLine",
    "deployment_network",
    "fold_batch_norm",
    "from_nir",
    "graph_summary",
    "norse_node_map",
    "parse_nir",
    "snntorch_node_map",
    "to_nir",
    "write_nir",
]
