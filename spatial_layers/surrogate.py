r"""The arctan surrogate gradient of snnTorch: a Heaviside step forward, a smooth slope backward.

.. math::
    S = H(x), \qquad
    \frac{\partial S}{\partial x} = \frac{\alpha / 2}{1 + (\pi \alpha x / 2)^2}

with :math:`x = U - \theta`. One expression (:func:`arctan_slope`) serves every backward
pass (the per-step :class:`ArctanSpike`, the fused torch and Triton loops), so all of them
round alike.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def arctan_slope(shifted: Tensor, alpha: float) -> Tensor:
    r"""The arctan surrogate's derivative at ``shifted`` = U - theta (any shape),
    :math:`(\alpha / 2) / (1 + (\pi \alpha x / 2)^2)`: one expression for every
    backward pass, so that all of them round alike."""
    return alpha / 2 / (1 + (math.pi / 2 * alpha * shifted).pow(2))


class ArctanSpike(torch.autograd.Function):
    """Heaviside step forward, arctan surrogate backward (as snnTorch's ATan).

    Written with a separate ``setup_context`` and ``generate_vmap_rule`` (its forward and
    backward are elementwise torch ops), so that ``torch.func.grad``, ``jacrev`` and
    ``vmap`` go through it.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(shifted: Tensor, alpha: float) -> Tensor:
        return (shifted > 0).to(shifted.dtype)

    @staticmethod
    def setup_context(ctx, inputs: tuple[Tensor, float], output: Tensor) -> None:
        shifted, alpha = inputs
        ctx.save_for_backward(shifted)
        ctx.alpha = alpha

    @staticmethod
    def backward(ctx, grad_spikes: Tensor) -> tuple[Tensor, None]:
        (shifted,) = ctx.saved_tensors
        return grad_spikes * arctan_slope(shifted, ctx.alpha), None
