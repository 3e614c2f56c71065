"""A LIF population with delayed recurrent connections (hidden -> hidden).

The population's own spikes come back through a ``SpatialDelay(pos, pos)``
in streaming mode, so a recurrent synapse j -> i delivers the spike of step
t - 1 - d_ij at step t (one step of synaptic latency plus the conduction
delay). DCLS convolutions cannot express this: the input of the recurrent
convolution is the layer's own output.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spatial_layers.delay import SpatialDelay
from spatial_layers.functional import delayed_step
from spatial_layers.neurons import DEFAULT_PARAMETERS, LeakyParameters, leaky_step


def recurrent_leaky(
    currents: Tensor,
    kernel: Tensor,
    bias: Tensor | None = None,
    params: LeakyParameters = DEFAULT_PARAMETERS,
) -> tuple[Tensor, Tensor]:
    r"""LIF neurons driven by ``currents`` plus their own spikes through delayed recurrence.

    .. math::
        U_t = \beta U_{t-1} + I_t + \sum_j \sum_k \mathrm{kernel}[i, j, k]\, S_{t-1-k}[j]
            + b_i - \theta\, r_t

    the LIF of :func:`~spatial_layers.neurons.leaky_step`, whose input adds the
    delayed feedback of :func:`~spatial_layers.functional.delayed_step`: the spike of
    neuron j at step t reaches i at step t + 1 + k (one step of synaptic latency plus
    the delay).

    Args:
        currents: (T, B, C) feed-forward input currents (possibly batch-normalised).
        kernel: (C, C, K) effective recurrent kernel (``SpatialDelay.applied_kernel()``).
        bias: optional (C,) bias of the recurrent connection.
        params: LIF constants.

    Returns:
        spikes and membrane traces, both (T, B, C).
    """
    spikes_prev = currents.new_zeros(currents.shape[1:])
    membrane = torch.zeros_like(spikes_prev)
    history = None
    spikes, membranes = [], []
    for current in currents:
        feedback, history = delayed_step(spikes_prev, kernel, history, bias)
        spikes_prev, membrane = leaky_step(current + feedback, membrane, params)
        spikes.append(spikes_prev)
        membranes.append(membrane)
    return torch.stack(spikes), torch.stack(membranes)


def check_recurrent_pair(feedforward: SpatialDelay, recurrent: SpatialDelay) -> None:
    """Raises unless ``recurrent`` maps ``feedforward``'s population onto itself.

    In spatial mode the recurrent layer's ``pre`` and ``post`` must be one
    :class:`NeuronPositions` module, the feed-forward layer's ``post``: one set of
    coordinates per population.
    """
    for role, layer in (("feedforward", feedforward), ("recurrent", recurrent)):
        if not isinstance(layer, SpatialDelay):
            raise TypeError(f"{role} must be a SpatialDelay, got {type(layer).__name__}")
        for flag in ("init_hidden", "batch_first"):
            if getattr(layer, flag):
                raise ValueError(
                    f"the {role} layer was built with {flag}=True; the recurrent population "
                    f"runs whole time-major (T, B, C) sequences: build it with {flag}=False"
                )
    size = feedforward.out_features
    if recurrent.in_features != size or recurrent.out_features != size:
        raise ValueError(
            f"recurrent layer must map the population to itself ({size} -> {size}), "
            f"got {recurrent.in_features} -> {recurrent.out_features}"
        )
    if recurrent.delay_mode == "spatial" and not (
        recurrent.pre is recurrent.post
        and (feedforward.delay_mode != "spatial" or feedforward.post is recurrent.post)
    ):
        raise ValueError(
            "a spatial recurrent layer must use one NeuronPositions module as pre, "
            "post, and as the feed-forward layer's post"
        )


class RecurrentSpatialLIF(nn.Module):
    """Feed-forward delays in, LIF neurons, delayed recurrence back onto them.

    Args:
        feedforward: ``SpatialDelay`` from the input population to this one.
        recurrent: ``SpatialDelay`` from this population to itself; in
            spatial mode its ``pre`` and ``post`` must be the same positions
            module as ``feedforward.post``.
        params: LIF constants (``LeakyParameters()`` if None).

    Shape:
        - Input: (T, B, C_in) spikes.
        - Output: (T, B, C) spikes; ``forward_with_membrane`` adds the
          (T, B, C) membrane.

    Example:
        >>> from spatial_layers import NeuronPositions
        >>> pos_in, pos_hid = NeuronPositions(4), NeuronPositions(8)
        >>> layer = RecurrentSpatialLIF(
        ...     SpatialDelay(pos_in, pos_hid, max_delay=3),
        ...     SpatialDelay(pos_hid, pos_hid, max_delay=3))
        >>> layer(torch.zeros(5, 2, 4)).shape
        torch.Size([5, 2, 8])
    """

    def __init__(
        self,
        feedforward: SpatialDelay,
        recurrent: SpatialDelay,
        params: LeakyParameters | None = None,
    ) -> None:
        super().__init__()
        check_recurrent_pair(feedforward, recurrent)
        self.feedforward = feedforward
        self.recurrent = recurrent
        self.params = LeakyParameters() if params is None else params

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_membrane(x)[0]

    def forward_with_membrane(self, x: Tensor) -> tuple[Tensor, Tensor]:
        currents = self.feedforward(x)
        # The recurrent layer sees the population's spikes: same checks as its step().
        self.recurrent._check(currents.new_zeros(currents.shape[1:]), rank=2)
        return recurrent_leaky(
            currents, self.recurrent.applied_kernel(), self.recurrent.bias, self.params
        )
