"""spsnn's custom operators, registered in this package and nowhere else.

Importing :mod:`spatial_layers.ops` registers, each with its autograd formula and its
fake (shape) kernel for ``torch.compile`` and ``torch.export``:

- ``spsnn::leaky_forward`` / ``spsnn::leaky_backward`` (:mod:`~spatial_layers.ops.leaky`):
  the multi-step LIF (and the readout's leaky integrator) over a (T, B, C) sequence;
- ``spsnn::recurrent_leaky_forward`` / ``spsnn::recurrent_leaky_backward``
  (:mod:`~spatial_layers.ops.recurrent`): the LIF with delayed recurrence;
- ``spsnn::neuron_forward`` / ``spsnn::neuron_backward`` (:mod:`~spatial_layers.ops.neurons`):
  the three neuron families (``lif``, ``cuba``, ``adlif``) with per-neuron constants,
  learnable or not, and every reset;
- ``spsnn::recurrent_neuron_forward`` / ``spsnn::recurrent_neuron_backward``
  (:mod:`~spatial_layers.ops.recurrent`): those families with delayed recurrence.

Every op has a batching rule (:mod:`~spatial_layers.ops.batching`), and the library calls
the forward ops through autograd Functions (:mod:`~spatial_layers.ops.functions`:
``fused_leaky``, ``fused_neurons``, ``fused_recurrent_leaky``, ``fused_recurrent_neurons``),
so that ``torch.func.grad``, ``jacrev`` and ``vmap`` work through them.

Each runs on the torch backend (a loop over T of in-place torch ops) or the Triton one
(:mod:`~spatial_layers.ops.triton_lif`, :mod:`~spatial_layers.ops.triton_recurrent`: one
kernel per direction, the loop over T inside; imported only when asked for, so an
install without Triton works). The rest of spsnn calls the ops through the names below.
"""

import torch

from spatial_layers.ops import batching, leaky, neurons, recurrent, scan
from spatial_layers.ops.backends import BACKENDS, TRITON_FOUND, Backend, resolve_backend
from spatial_layers.ops.leaky import leaky_spikes_

leaky_forward = torch.ops.spsnn.leaky_forward
leaky_backward = torch.ops.spsnn.leaky_backward
recurrent_leaky_forward = torch.ops.spsnn.recurrent_leaky_forward
recurrent_leaky_backward = torch.ops.spsnn.recurrent_leaky_backward
neuron_forward = torch.ops.spsnn.neuron_forward
neuron_backward = torch.ops.spsnn.neuron_backward
recurrent_neuron_forward = torch.ops.spsnn.recurrent_neuron_forward
recurrent_neuron_backward = torch.ops.spsnn.recurrent_neuron_backward

batching.register()

from spatial_layers.ops.functions import (  # noqa: E402 (the ops above must exist first)
    fused_leaky,
    fused_neurons,
    fused_recurrent_leaky,
    fused_recurrent_neurons,
)

__all__ = [
    "BACKENDS",
    "TRITON_FOUND",
    "Backend",
    "fused_leaky",
    "fused_neurons",
    "fused_recurrent_leaky",
    "fused_recurrent_neurons",
    "leaky",
    "leaky_backward",
    "leaky_forward",
    "leaky_spikes_",
    "neuron_backward",
    "neuron_forward",
    "neurons",
    "recurrent",
    "recurrent_leaky_backward",
    "recurrent_leaky_forward",
    "recurrent_neuron_backward",
    "recurrent_neuron_forward",
    "resolve_backend",
    "scan",
]
