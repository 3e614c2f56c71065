r"""What constrains a delayed layer's weights: the connectivity mask, Dale's signs, k-bit weights.

A layer stores free float weights; what it applies is

.. math::
    \hat w_{ij} = Q_b\big(m_{ij}\, s_j\, |w_{ij}|\big) \quad \text{(Dale's principle on)}, \qquad
    \hat w_{ij} = Q_b\big(m_{ij}\, w_{ij}\big) \quad \text{(off)}

with the boolean mask :math:`m` (absent synapses are 0; rewiring edits it), the sign
:math:`s_j = \pm 1` of presynaptic neuron j, and :math:`Q_b` the straight-through
b-bit quantisation of :mod:`spatial_layers.quantization` (the identity for float
weights). :func:`constrained_weight` is that map as a pure function;
:class:`WeightConstraints` holds its state in a layer (the ``mask`` and ``sign``
buffers, the ``weight_bits`` and ``weight_scale`` settings), as
:class:`~spatial_layers.SpatialDelay` does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spatial_layers.quantization import WEIGHT_SCALES, fake_quantize, weight_levels


def constrained_weight(
    weight: Tensor,
    mask: Tensor,
    sign: Tensor | None = None,
    bits: int | None = None,
    scale_rule: str = "max",
) -> Tensor:
    """The (C_out, C_in) weights as a layer applies them (see the module doc).

    Under Dale the magnitude is taken as ``where(w >= 0, w, -w)`` rather than
    ``w.abs()``: both give |w|, but ``abs`` has gradient 0 at w = 0, which would
    freeze every synapse that rewiring regrows at zero.

    Args:
        weight: (C_out, C_in) stored weights.
        mask: (C_out, C_in) bool, False for absent synapses.
        sign: (C_in,) +1/-1 per presynaptic neuron (Dale's principle), or None.
        bits: k-bit weights (straight-through), or None for float weights.
        scale_rule: ``"max"`` or ``"power_of_two"`` (:data:`~spatial_layers.quantization.
            WEIGHT_SCALES`), the k-bit scale.

    Example:
        >>> w = torch.tensor([[0.5, -0.25]])
        >>> constrained_weight(w, torch.tensor([[True, False]]), torch.tensor([-1.0, 1.0]))
        tensor([[-0.5000,  0.0000]])
    """
    if sign is not None:
        weight = sign * torch.where(weight >= 0, weight, -weight)
    weight = weight * mask
    if bits is not None:
        weight = fake_quantize(weight, bits, power_of_two=scale_rule == "power_of_two")
    return weight


def check_signs(sign: Tensor, name: str = "sign") -> None:
    """ValueError naming the first value of ``sign`` that is not +1 or -1 (Dale's signs
    scale each presynaptic neuron's |w|: any other value changes its weights silently).

    >>> check_signs(torch.tensor([1.0, -1.0]))
    """
    bad = (sign != 1) & (sign != -1)
    if bool(bad.any()):
        index = int(bad.nonzero()[0, 0]) if sign.dim() else 0
        value = sign.flatten()[index].item()
        raise ValueError(
            f"{name} must hold +1 or -1 per presynaptic neuron (Dale's principle), got "
            f"{value} at [{index}] ({int(bad.sum())} such values): save the signs that "
            "assign_dale_signs gives, or no sign for a layer without Dale's principle"
        )


class WeightConstraints:
    """The weight constraints of a layer with a (C_out, C_in) ``weight`` (an nn.Module mixin).

    Attributes:
        mask: (C_out, C_in) bool buffer; False synapses are absent (rewiring edits it).
        sign: (C_in,) +1/-1 buffer per presynaptic neuron under Dale's principle
            (the applied weight is then sign * |weight|), else None.
        weight_bits: None (float weights), or k >= 2: the weights are applied
            quantised to k bits (symmetric, per layer) with a straight-through
            gradient, for quantisation-aware training (settable, validated).
        weight_scale: how the k-bit scale is chosen, ``"max"`` (max |w| / levels) or
            ``"power_of_two"`` (the power of two above it, for hardware with a
            per-layer weight exponent; settable, validated).
    """

    weight: Tensor
    mask: Tensor
    sign: Tensor | None

    def _init_constraints(
        self, out_features: int, in_features: int, device: torch.device | str | None
    ) -> None:
        """Registers an all-True mask and no signs; float weights."""
        mask = torch.ones(out_features, in_features, dtype=torch.bool, device=device)
        self.register_buffer("mask", mask)
        self.register_buffer("sign", None)
        self.weight_bits = None
        self.weight_scale = "max"

    @property
    def weight_bits(self) -> int | None:
        return self._weight_bits

    @weight_bits.setter
    def weight_bits(self, bits: int | None) -> None:
        if bits is not None:
            weight_levels(bits)  # validates
        self._weight_bits = bits

    @property
    def weight_scale(self) -> str:
        return self._weight_scale

    @weight_scale.setter
    def weight_scale(self, rule: str) -> None:
        if rule not in WEIGHT_SCALES:
            raise ValueError(f"weight_scale must be one of {WEIGHT_SCALES}, got {rule!r}")
        self._weight_scale = rule

    def effective_weight(self) -> Tensor:
        """(C_out, C_in) weights as applied: masked, signed under Dale, k-bit if asked."""
        return constrained_weight(
            self.weight, self.mask, self.sign, self.weight_bits, self.weight_scale
        )

    def _shape_sign_for(self, state_dict: dict, prefix: str) -> None:
        """``sign`` starts as None; a state dict saved under Dale's principle holds it,
        so the buffer gets a shape before torch copies into it. A saved sign other than
        +1/-1 (0 removes a neuron's synapses, 2 doubles them, NaN) is refused."""
        key = prefix + "sign"
        saved = state_dict.get(key)
        if saved is None:
            return
        check_signs(saved, key)
        if self.sign is None:
            self.sign = torch.empty_like(saved, device=self.weight.device)
