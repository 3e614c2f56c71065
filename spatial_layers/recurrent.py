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

from spatial_layers import recurrent_lif  # noqa: F401  (registers the spsnn::recurrent_* ops)
from spatial_layers.delay import SpatialDelay
from spatial_layers.neurons import (
    BACKENDS,
    DEFAULT_PARAMETERS,
    Backend,
    LeakyParameters,
    resolve_backend,
)


def recurrent_leaky(
    currents: Tensor,
    kernel: Tensor,
    bias: Tensor | None = None,
    params: LeakyParameters = DEFAULT_PARAMETERS,
    backend: Backend = "auto",
) -> tuple[Tensor, Tensor]:
    r"""LIF neurons driven by ``currents`` plus their own spikes through delayed recurrence.

    .. math::
        U_t = \beta U_{t-1} + I_t + \sum_j \sum_k \mathrm{kernel}[i, j, k]\, S_{t-1-k}[j]
            + b_i - \theta\, r_t

    the LIF of :func:`~spatial_layers.neurons.leaky_step`, whose input adds the
    delayed feedback of :func:`~spatial_layers.functional.delayed_step`: the spike of
    neuron j at step t reaches i at step t + 1 + k (one step of synaptic latency plus
    the delay).

    Fused: one autograd node for the whole sequence, with a hand-written backward over
    time (:mod:`spatial_layers.recurrent_lif`). On the torch backend the forward is bit
    for bit ``delayed_step`` and ``leaky_step`` in a loop; on the Triton backend it
    equals them to float rounding of the feedback sums; gradients equal the loop's up
    to float summation order.

    Args:
        currents: (T, B, C) feed-forward input currents (possibly batch-normalised).
        kernel: (C, C, K) effective recurrent kernel (``SpatialDelay.applied_kernel()``).
        bias: optional (C,) bias of the recurrent connection.
        params: LIF constants.
        backend: ``"auto"`` (torch, for now also on CUDA: see :func:`_recurrent_backend`),
            ``"torch"`` (a loop over T of torch ops) or ``"triton"`` (one kernel per
            direction, the loop over T inside; :mod:`spatial_layers.triton_recurrent`).

    Returns:
        spikes and membrane traces, both (T, B, C).

    Example:
        >>> spikes, _ = recurrent_leaky(torch.full((4, 1, 2), 0.6), torch.zeros(2, 2, 3))
        >>> spikes.flatten().tolist()
        [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    """
    if currents.dim() != 3:
        raise ValueError(f"expected (T, B, C) currents, got shape {tuple(currents.shape)}")
    size = currents.shape[-1]
    if kernel.dim() != 3 or kernel.shape[:2] != (size, size) or kernel.shape[-1] < 1:
        raise ValueError(
            f"expected a ({size}, {size}, K) recurrent kernel, got {tuple(kernel.shape)}"
        )
    if bias is not None and bias.shape != (size,):
        raise ValueError(f"expected a ({size},) bias, got {tuple(bias.shape)}")
    beta, threshold, alpha = (float(value) for value in params)
    # A cast (a no-op at equal dtypes) where F.linear under autocast would cast.
    bias = None if bias is None else bias.to(currents.dtype)
    return torch.ops.spsnn.recurrent_leaky_forward(
        currents,
        kernel.to(currents.dtype),
        bias,
        beta,
        threshold,
        alpha,
        _recurrent_backend(backend, currents),
    )


def _recurrent_backend(backend: Backend, currents: Tensor) -> str:
    """``"auto"`` runs the torch loop, also on CUDA, until the Triton kernel is timed there.

    The Triton kernel re-reads the whole (C, C, K) kernel per batch row and step, and
    sums the feedback in another order than torch's matrix product (equal to float
    rounding, not bit for bit); ``backend="triton"`` opts in.
    """
    return resolve_backend("torch" if backend == "auto" else backend, currents)


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
        backend: implementation of the loop over time, as in :func:`recurrent_leaky`.

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
        *,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        check_recurrent_pair(feedforward, recurrent)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.feedforward = feedforward
        self.recurrent = recurrent
        self.params = LeakyParameters() if params is None else params
        self.backend = backend

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_membrane(x)[0]

    def forward_with_membrane(self, x: Tensor) -> tuple[Tensor, Tensor]:
        currents = self.feedforward(x)
        # The recurrent layer sees the population's spikes: same checks as its step().
        self.recurrent._check(currents.new_zeros(currents.shape[1:]), rank=2)
        return recurrent_leaky(
            currents,
            self.recurrent.applied_kernel(),
            self.recurrent.bias,
            self.params,
            self.backend,
        )
