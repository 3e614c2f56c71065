"""Deployment export: a trained SpatialSNN as a NIR graph with integer delays, and back.

- :mod:`~lightning_modules.export.quantize`: integer delays, k-bit weights.
- :mod:`~lightning_modules.export.deploy`: the deployed network (batch norm
  folded, ``round`` kernels, quantised weights).
- :mod:`~lightning_modules.export.nir_graph`: :func:`to_nir` / :func:`from_nir`
  (graph layout and conventions in its docstring);
  :mod:`~lightning_modules.export.nir_reader` validates what it reads;
  :mod:`~lightning_modules.export.conventions` holds what both agree on.
- :mod:`~lightning_modules.export.evaluate`, :mod:`~lightning_modules.export.cli`:
  ``spsnn export CKPT OUT.nir [--evaluate]``.
"""

from lightning_modules.export.deploy import deployment_network, fold_batch_norm
from lightning_modules.export.nir_graph import from_nir, graph_summary, to_nir, write_nir
from lightning_modules.export.quantize import integer_delays, quantize_weights

__all__ = [
    "deployment_network",
    "fold_batch_norm",
    "from_nir",
    "graph_summary",
    "integer_delays",
    "quantize_weights",
    "to_nir",
    "write_nir",
]
