"""The deployed form of a trained :class:`SpatialSNN`: what an export writes out.

:func:`deployment_network` returns a copy of the network in the form a
neuromorphic target runs, still as a ``SpatialSNN`` (same delay mode, so its
delays still come from coordinates), so that it can be evaluated and compared
step for step with a re-imported graph:

- evaluation mode: dropout is the identity, batch norm uses its running
  statistics;
- batch norm folded into the layer before it (:func:`fold_batch_norm`);
- every delayed layer uses the ``round`` kernel (integer delays);
- weights stored as applied (masked, Dale-signed) and, with ``weight_bits``,
  quantised per layer (:func:`~spatial_layers.quantization.quantized_weight`,
  the function quantisation-aware training uses); biases (and folded
  batch-norm shifts) stay float.

:func:`delayed_connections` names the layers and the populations they join,
the vocabulary of the exported graph.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from torch import Tensor, nn

from spatial_layers import hardware
from spatial_layers.delay import SpatialDelay
from spatial_layers.kernels import round_delays
from spatial_layers.networks.snn import SpatialSNN
from spatial_layers.neurons.recurrent import RECURRENT_LATENCY
from spatial_layers.quantization import quantized_weight

INPUT_POPULATION = "input"
READOUT_POPULATION = "readout"


class DelayedConnection(NamedTuple):
    """One delayed layer of a :class:`SpatialSNN` and the populations it joins.

    Attributes:
        name: ``"layers_<l>"`` (feed-forward, population l -> l + 1) or
            ``"recurrent_layers_<h>"`` (hidden population h + 1 onto itself),
            the layer's attribute path with ``_`` for ``.``.
        source: presynaptic population index (0 = the inputs).
        target: postsynaptic population index (last = the readout).
        recurrent: True for hidden -> hidden feedback.
        layer: the :class:`SpatialDelay`.
    """

    name: str
    source: int
    target: int
    recurrent: bool
    layer: SpatialDelay


def population_names(net: SpatialSNN) -> list[str]:
    """``["input", "hidden_0", ..., "hidden_<H-1>", "readout"]``, one name per population."""
    hidden = [f"hidden_{index}" for index in range(len(net.hidden_sizes))]
    return [INPUT_POPULATION, *hidden, READOUT_POPULATION]


def delayed_connections(net: SpatialSNN) -> list[DelayedConnection]:
    """Every delayed layer of ``net``: feed-forward in order, then the recurrent ones."""
    found = [
        DelayedConnection(f"layers_{index}", index, index + 1, False, layer)
        for index, layer in enumerate(net.layers)
    ]
    found += [
        DelayedConnection(f"recurrent_layers_{index}", index + 1, index + 1, True, layer)
        for index, layer in enumerate(net.recurrent_layers)
    ]
    return found


def check_delay_limit(net: SpatialSNN, max_delay: int | None, clip: bool) -> int:
    """Counts the active synapses whose integer delay exceeds a hardware limit (steps).

    Delays are rounded as the ``round`` kernel rounds; recurrent synapses count
    ``d + RECURRENT_LATENCY`` (their graph Delay). Returns the count (0 without a
    limit); without ``clip`` a count above 0 raises a ValueError that gives it and
    names the largest delay.
    """
    if max_delay is None:
        return 0
    over, largest, recurrent = 0, 0, False
    for connection in delayed_connections(net):
        layer = connection.layer
        latency = RECURRENT_LATENCY if connection.recurrent else 0
        delays = round_delays(layer.delays().detach())[layer.mask] + latency
        over += int((delays > max_delay).sum())
        if delays.numel():
            largest = max(largest, int(delays.max()))
            recurrent |= connection.recurrent
    if over and not clip:
        note = f"; recurrent delays count +{RECURRENT_LATENCY} step of latency" if recurrent else ""
        raise ValueError(
            f"{over} synapses have delays above max_delay={max_delay} steps (largest: "
            f"{largest} steps{note}); clip_delays=True (spsnn export --clip-delays) clamps them"
        )
    if over and recurrent and max_delay < RECURRENT_LATENCY:
        raise ValueError(
            f"recurrent synapses need a Delay of at least {RECURRENT_LATENCY} step; "
            f"max_delay={max_delay} cannot hold them"
        )
    return over


def fold_batch_norm(
    weight: Tensor, bias: Tensor | None, norm: nn.BatchNorm1d
) -> tuple[Tensor, Tensor]:
    r"""Folds an evaluation-mode batch norm into the linear map before it.

    .. math::
        \gamma \frac{W x + b - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta
        = (g W) x + g (b - \mu) + \beta, \qquad g = \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}}

    (:math:`\gamma = 1, \beta = 0` without affine parameters). The delay
    kernel is linear in the weights, so folding into the weights of a
    delayed layer is exact up to float rounding.

    Args:
        weight: (C_out, C_in) effective weights.
        bias: (C_out,) or None (zero).
        norm: a ``BatchNorm1d`` over C_out channels with running statistics.

    Returns:
        (C_out, C_in) folded weights and (C_out,) folded bias.
    """
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError(
            "batch norm without running statistics (track_running_stats=False) cannot be folded"
        )
    if norm.num_features != weight.shape[0]:
        raise ValueError(
            f"batch norm over {norm.num_features} channels cannot follow a layer with "
            f"{weight.shape[0]} outputs"
        )
    gain = torch.rsqrt(norm.running_var + norm.eps)
    shift = -norm.running_mean * gain
    if norm.affine:
        gain = gain * norm.weight
        shift = shift * norm.weight + norm.bias
    if bias is not None:
        shift = shift + gain * bias
    return weight * gain[:, None], shift


def deployment_network(
    net: SpatialSNN,
    *,
    weight_bits: int | None = None,
    target: str | None = None,
    max_delay: int | None = None,
    clip_delays: bool = False,
) -> tuple[SpatialSNN, dict[str, float]]:
    """A copy of ``net`` as deployed: eval mode, batch norm folded, ``round`` kernels, k bits.

    With a hardware ``target`` (``"loihi2"``) the copy computes in that profile
    (:mod:`spatial_layers.hardware.loihi2.profile`): its weights are the 8-bit power-of-two
    ones the profile applies, ``weight_bits`` must be None or 8, and its delays
    stay within ``max_delay`` (default and at most the chip's 62 steps): delays
    above it are refused (:func:`check_delay_limit`), or clipped to it with
    ``clip_delays``. Without a target, ``max_delay`` and ``clip_delays`` are the
    export's business (:func:`~spatial_layers.nir.graph.to_nir`).

    Under Dale's principle the copy keeps each layer's signs, unless folding a
    batch norm with a negative gain flipped some rows (then that layer's
    ``sign`` is None: the folded weights no longer obey one sign per
    presynaptic neuron). ``net`` itself is not changed.

    Args:
        net: a trained network.
        weight_bits: bits per weight (>= 2), or None to keep float weights.

    Returns:
        The deployed copy (on ``net``'s device) and the weight scale of every
        layer by :class:`DelayedConnection` name (empty without ``weight_bits``).
    """
    if target is not None:
        return _profile_deployment(net, weight_bits, target, max_delay, clip_delays)
    deployed = _time_major_copy(net)
    for block in deployed.hidden:
        if block.norm is not None:
            _fold_into(block.synapses, block.norm)
            block.norm = None
    scales = {}
    for connection in delayed_connections(deployed):
        layer = connection.layer
        layer.kernel_kind = "round"
        if weight_bits is not None:
            weight = layer.effective_weight()
            if not torch.isfinite(weight).all():
                raise ValueError(f"cannot quantise {connection.name}: its weights hold NaN or Inf")
            quantized, scale = quantized_weight(weight, weight_bits)
            layer.weight.copy_(quantized)
            scales[connection.name] = float(scale)
        layer.weight_bits = None  # the weights are what the layer applies (no training-time k-bit)
    return deployed, scales


def profile_delay_limit(target: str, max_delay: int | None) -> int:
    """The delay limit (steps) under a hardware profile: ``max_delay``, at most the chip's."""
    limit = hardware.get_profile(target).max_delay
    if max_delay is not None and max_delay > limit:
        raise ValueError(f"max_delay={max_delay} exceeds the {target} profile's {limit} steps")
    return limit if max_delay is None else max_delay


@torch.no_grad()
def _profile_deployment(
    net: SpatialSNN, weight_bits: int | None, target: str, max_delay: int | None, clip: bool
) -> tuple[SpatialSNN, dict[str, float]]:
    bits = hardware.get_profile(target).weight_bits
    if weight_bits not in (None, bits):
        raise ValueError(
            f"the {target} profile has {bits}-bit weights, got weight_bits="
            f"{weight_bits}: leave it unset"
        )
    limit = profile_delay_limit(target, max_delay)
    check_delay_limit(net, limit, clip)
    deployed = _time_major_copy(net)
    deployed.max_delay = min(deployed.max_delay, limit)
    for layer in deployed.delay_layers():
        layer.max_delay = min(layer.max_delay, limit)  # delays() clamps to it
    deployed.hardware_profile = target
    scales = {}
    for connection, scale in zip(
        delayed_connections(deployed),
        hardware.get_profile(target).weight_scales(deployed),
        strict=True,
    ):
        layer = connection.layer
        layer.weight.copy_(layer.effective_weight())  # quantising it again changes nothing
        scales[connection.name] = scale
    return deployed, scales


def _time_major_copy(net: SpatialSNN) -> SpatialSNN:
    """A frozen evaluation-mode copy of ``net`` that runs (T, B, C) sequences, as graphs do."""
    deployed = copy.deepcopy(net).eval()
    deployed.requires_grad_(False)
    deployed.batch_first = False
    deployed.init_args["batch_first"] = False
    return deployed


@torch.no_grad()
def _fold_into(layer: SpatialDelay, norm: nn.BatchNorm1d) -> None:
    weight, bias = fold_batch_norm(layer.effective_weight(), layer.bias, norm)
    if layer.sign is not None and bool((weight * layer.sign < 0).any()):
        layer.sign = None
    layer.weight.copy_(weight)
    if layer.bias is None:
        layer.bias = nn.Parameter(bias, requires_grad=False)
    else:
        layer.bias.copy_(bias)
