"""Per-step state across a whole network: a new sequence, or truncated BPTT.

In snnTorch-style loops (``for x_t in x: out = net(x_t)``) the layers keep
their state between calls: a :class:`~spatial_layers.SpatialDelay` built with
``init_hidden=True`` (or driven by ``step``) its history of the last
``max_delay`` inputs, ``snn.Leaky(init_hidden=True)`` its membrane.
:func:`reset` starts a new sequence in all of them and :func:`detach` cuts
the gradient through them (truncated BPTT), with one call each.
``snntorch.utils.reset(net)`` reaches snnTorch's neurons only.

snnTorch is never imported here: its neurons are handled when the network
holds some (which needs snnTorch imported already).
"""

from __future__ import annotations

import sys

from torch import nn

from spatial_layers.delay import delay_layers


def _snntorch_neurons(net: nn.Module) -> list[nn.Module]:
    """The snnTorch spiking neurons in ``net``, in ``modules()`` order (none without snnTorch)."""
    snntorch = sys.modules.get("snntorch")
    if snntorch is None:
        return []
    return [m for m in net.modules() if isinstance(m, snntorch.SpikingNeuron)]


def reset(net: nn.Module) -> None:
    """Starts a new sequence in every stateful layer of ``net``.

    Clears the history of every :class:`~spatial_layers.SpatialDelay` (as its
    ``reset_state()``) and, where ``net`` holds snnTorch neurons, calls
    ``snntorch.utils.reset`` on each module that holds them directly (it
    zeros and detaches their hidden state; snnTorch resets all instances of
    the neuron classes it finds).

    Example:
        >>> import torch
        >>> from spatial_layers import SpatialDelay
        >>> net = nn.Sequential(SpatialDelay(3, 2, max_delay=4, init_hidden=True))
        >>> _ = net(torch.ones(1, 3))
        >>> reset(net)
        >>> net[0]._stream is None
        True
    """
    for layer in delay_layers(net):
        layer.reset_state()
    neurons = _snntorch_neurons(net)
    if neurons:
        from snntorch import utils

        held = {id(n) for n in neurons}
        for parent in net.modules():
            if any(id(child) in held for child in parent.children()):
                utils.reset(parent)


def detach(net: nn.Module) -> None:
    """Truncated BPTT: cuts the gradient through the per-step state of every layer of ``net``.

    Every :class:`~spatial_layers.SpatialDelay` keeps its history (``detach_state()``);
    snnTorch's neurons keep their hidden state, detached by their class's
    ``detach_hidden()``. Call it between the chunks of a sequence, after
    ``loss.backward()``.
    """
    for layer in delay_layers(net):
        layer.detach_state()
    for kind in {type(neuron) for neuron in _snntorch_neurons(net)}:
        if hasattr(kind, "detach_hidden"):
            kind.detach_hidden()
