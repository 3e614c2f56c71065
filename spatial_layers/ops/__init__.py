"""spsnn's custom operators, registered in this package and nowhere else.

Importing :mod:`spatial_layers.ops` registers, each with its autograd formula and its
fake (shape) kernel for ``torch.compile`` and ``torch.export``:

- ``spsnn::leaky_forward`` / ``spsnn::leaky_backward`` (:mod:`~spatial_layers.ops.leaky`):
  the multi-step LIF (and the readout's leaky integrator) over a (T, B, C) sequence;
- ``spsnn::recurrent_leaky_forward`` / ``spsnn::recurrent_leaky_backward``
  (:mod:`~spatial_layers.ops.recurrent`): the LIF with delayed recurrence.

Each also has a batching rule (``torch.vmap``, ``jacrev``); under ``torch.func``
transforms the forward ops run inside an autograd Function (:func:`leaky.leaky_forward`,
:func:`recurrent.recurrent_leaky_forward`), as torch.func refuses a custom op's registered
autograd. Each runs on the torch backend (a loop over T of in-place torch ops) or the Triton one
(:mod:`~spatial_layers.ops.triton_lif`, :mod:`~spatial_layers.ops.triton_recurrent`: one
kernel per direction, the loop over T inside; imported only when asked for, so an
install without Triton works). The rest of spsnn calls the ops through the names below.
"""

import torch

from spatial_layers.ops import leaky, recurrent, scan
from spatial_layers.ops.backends import BACKENDS, TRITON_FOUND, Backend, resolve_backend
from spatial_layers.ops.leaky import leaky_spikes_

# The forward ops through the functions that also run them under torch.func transforms.
leaky_forward = leaky.leaky_forward
leaky_backward = torch.ops.spsnn.leaky_backward
recurrent_leaky_forward = recurrent.recurrent_leaky_forward
recurrent_leaky_backward = torch.ops.spsnn.recurrent_leaky_backward

__all__ = [
    "BACKENDS",
    "TRITON_FOUND",
    "Backend",
    "leaky",
    "leaky_backward",
    "leaky_forward",
    "leaky_spikes_",
    "recurrent",
    "recurrent_leaky_backward",
    "recurrent_leaky_forward",
    "resolve_backend",
    "scan",
]
