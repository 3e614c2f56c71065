"""LIF neurons with delayed recurrent connections (hidden -> hidden), over a sequence.

The population's own spikes come back through a delayed layer onto itself (a
``SpatialDelay(pos, pos)``, as its streaming form computes it), so a recurrent synapse
j -> i delivers the spike of step t - 1 - d_ij at step t (one step of synaptic latency,
:data:`RECURRENT_LATENCY`, plus the conduction delay). DCLS convolutions cannot express
this: the input of the recurrent convolution is the layer's own output.
"""

from __future__ import annotations

from torch import Tensor

from spatial_layers import ops
from spatial_layers.neurons.base import NeuronBase
from spatial_layers.neurons.leaky import DEFAULT_PARAMETERS, LeakyParameters
from spatial_layers.ops import Backend, resolve_backend

#: Steps between a hidden spike and its arrival through a recurrent synapse of delay 0.
RECURRENT_LATENCY = 1


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
    time (:mod:`spatial_layers.ops.recurrent`). On the torch backend the forward is bit
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
            direction, the loop over T inside; :mod:`spatial_layers.ops.triton_recurrent`).

    Returns:
        spikes and membrane traces, both (T, B, C).

    Example:
        >>> import torch
        >>> spikes, _ = recurrent_leaky(torch.full((4, 1, 2), 0.6), torch.zeros(2, 2, 3))
        >>> spikes.flatten().tolist()
        [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    """
    _check_shapes(currents, kernel, bias)
    beta, threshold, alpha = (float(value) for value in params)
    # A cast (a no-op at equal dtypes) where F.linear under autocast would cast.
    bias = None if bias is None else bias.to(currents.dtype)
    return ops.fused_recurrent_leaky(
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


def recurrent_neurons(
    currents: Tensor, kernel: Tensor, bias: Tensor | None, neuron: NeuronBase
) -> tuple[Tensor, Tensor]:
    r"""Any neuron family (:class:`~spatial_layers.neurons.Leaky`,
    :class:`~spatial_layers.neurons.Synaptic`, :class:`~spatial_layers.neurons.AdaptiveLeaky`)
    driven by ``currents`` plus its own spikes through delayed recurrence.

    The family's step (its module doc) with the input current
    :math:`x_t + \sum_j \sum_k \mathrm{kernel}[i, j, k]\, S_{t-1-k}[j] + b_i`, from zero state,
    as :func:`recurrent_leaky` for the LIF; the neuron's constants (learnable or not) get
    their gradients too. A LIF with one constant ``beta`` and the default reset runs
    :func:`recurrent_leaky` itself.

    Args:
        currents: (T, B, C) feed-forward input currents.
        kernel: (C, C, K) effective recurrent kernel.
        bias: optional (C,) bias of the recurrent connection.
        neuron: the neurons (constants, reset, backend).

    Returns:
        spikes and membrane traces, both (T, B, C).
    """
    if getattr(neuron, "legacy", False):
        return recurrent_leaky(currents, kernel, bias, neuron.params, neuron.backend)
    _check_shapes(currents, kernel, bias)
    bias = None if bias is None else bias.to(currents.dtype)
    spikes, traces = ops.fused_recurrent_neurons(
        currents, kernel.to(currents.dtype), bias, neuron.kernel_constants(currents.shape[-1]),
        neuron.family, neuron.threshold, neuron.surrogate_alpha, neuron.reset,
        neuron.reset_delay, _recurrent_backend(neuron.backend, currents),
    )  # fmt: skip
    return spikes, traces[0]


def _check_shapes(currents: Tensor, kernel: Tensor, bias: Tensor | None) -> None:
    """Raises ValueError unless currents are (T, B, C), the kernel (C, C, K >= 1) and the
    bias None or (C,)."""
    if currents.dim() != 3:
        raise ValueError(f"expected (T, B, C) currents, got shape {tuple(currents.shape)}")
    size = currents.shape[-1]
    if kernel.dim() != 3 or kernel.shape[:2] != (size, size) or kernel.shape[-1] < 1:
        raise ValueError(
            f"expected a ({size}, {size}, K) recurrent kernel, got {tuple(kernel.shape)}"
        )
    if bias is not None and bias.shape != (size,):
        raise ValueError(f"expected a ({size},) bias, got {tuple(bias.shape)}")
