r"""Adaptive LIF neurons as SE-adLIF defines them (Baronig et al., arXiv 2408.07517).

A membrane :math:`u` and an adaptation current :math:`w` coupled to it, discretised with
the symplectic Euler method (the adaptation update sees this step's membrane after the
reset and this step's spike):

.. math::
    v_t = \beta u_{t-1} + (1 - \beta)(x_t - w_{t-1}), \qquad S_t = H(v_t - \theta), \\
    u_t = v_t (1 - S_t), \qquad
    w_t = \rho w_{t-1} + (1 - \rho)\, q\, (a u_t + b S_t)

(reset to zero at once, detached; the spike's surrogate gradient also reaches :math:`w`
through :math:`b S_t`, as in SE-adLIF). In spsnn's names: ``beta`` the membrane decay
:math:`\beta = e^{-1/\tau_u}`, ``adaptation_decay`` :math:`\rho = e^{-1/\tau_w}`,
``coupling`` :math:`a`, ``jump`` :math:`b`, ``scale`` :math:`q`. The paper's ranges (its SHD
and SSC configurations), the defaults here: :math:`\tau_u \in [5, 25]` steps,
:math:`\tau_w \in [60, 300]` steps, :math:`a \in [0, 1]`, :math:`b \in [0, 2]`, :math:`q = 120`,
threshold 1; each neuron draws its constants uniformly in them (decays uniformly in
:math:`\tau`), as a buffer or a learnable parameter kept in its range
(:mod:`spatial_layers.neurons.base`). The surrogate gradient is spsnn's arctan (SE-adLIF
uses SLAYER's).

The step computes :math:`g = 1 - \beta`, :math:`c_a = (1 - \rho) q a` and
:math:`c_b = (1 - \rho) q b` once (:func:`adaptive_constants`) and then, in this order,
:math:`v_t = (\beta u_{t-1}) + (g (x_t - w_{t-1}))` and
:math:`w_t = (\rho w_{t-1}) + ((c_a u_t) + (c_b S_t))`; the fused op
(:mod:`spatial_layers.ops.neurons`) runs the same operations, bit for bit.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from spatial_layers.arguments import check_flag, check_positive
from spatial_layers.neurons.base import (
    ConstantSpec,
    ConstantValue,
    NeuronBase,
    membrane_step,
)
from spatial_layers.ops import Backend

#: SE-adLIF's ranges: membrane time constants of 5 to 25 steps, as decays per step.
SE_ADLIF_BETA = (math.exp(-1 / 5), math.exp(-1 / 25))
#: SE-adLIF's adaptation time constants, 60 to 300 steps, as decays per step.
SE_ADLIF_ADAPTATION_DECAY = (math.exp(-1 / 60), math.exp(-1 / 300))
#: SE-adLIF's ranges of the coupling a and the spike-triggered jump b.
SE_ADLIF_COUPLING = (0.0, 1.0)
SE_ADLIF_JUMP = (0.0, 2.0)
#: SE-adLIF's q, which scales a and b (its SHD and SSC configurations).
SE_ADLIF_SCALE = 120.0


class AdaptiveParameters(NamedTuple):
    """SE-adLIF constants (numbers, or (C,) tensors per neuron).

    Attributes:
        beta: membrane decay per step.
        adaptation_decay: decay of the adaptation current per step.
        coupling: a, the adaptation's coupling to the membrane.
        jump: b, the adaptation's spike-triggered jump.
        scale: q, multiplies a and b.
        threshold: firing threshold.
        surrogate_alpha: arctan surrogate slope.
    """

    beta: float | Tensor = 0.9
    adaptation_decay: float | Tensor = 0.99
    coupling: float | Tensor = 0.5
    jump: float | Tensor = 1.0
    scale: float = SE_ADLIF_SCALE
    threshold: float = 1.0
    surrogate_alpha: float = 2.0


class AdaptiveState(NamedTuple):
    """State of adaptive neurons, each (B, C): the membrane u (post-reset) and the
    adaptation current w."""

    membrane: Tensor
    adaptation: Tensor


def adaptive_constants(values: Tensor, scale: float) -> Tensor:
    r"""The (5, C) constants of the fused op, :math:`[\beta, 1 - \beta, \rho, (1 - \rho) q a,
    (1 - \rho) q b]`, from (4, C) values :math:`[\beta, \rho, a, b]` (one place, so that the
    step function and the fused op apply the same bits)."""
    complement = 1 - values[:2]
    gains = values[2:] * (complement[1:] * scale)
    return torch.cat([values[:1], complement[:1], values[1:2], gains])


#: The default constants of :func:`adaptive_step`.
DEFAULT_ADAPTIVE = AdaptiveParameters()


def adaptive_step(
    x: Tensor, state: AdaptiveState, params: AdaptiveParameters = DEFAULT_ADAPTIVE
) -> tuple[Tensor, AdaptiveState]:
    """One SE-adLIF step (the module doc's equations). Returns the (B, C) spikes and state.

    Example:
        >>> import torch
        >>> params = AdaptiveParameters(0.5, 0.9, coupling=0.0, jump=10.0, scale=1.0)
        >>> state, trace = AdaptiveState(torch.zeros(1), torch.zeros(1)), []
        >>> for _ in range(4):  # each spike raises w by (1 - 0.9) * 10 = 1
        ...     spikes, state = adaptive_step(torch.full((1,), 2.5), state, params)
        ...     trace.append(int(spikes.item()))
        >>> trace
        [1, 0, 1, 0]
    """
    given = (params.beta, params.adaptation_decay, params.coupling, params.jump)
    values = torch.stack(torch.broadcast_tensors(*(_constant(v) for v in given)))
    constants = adaptive_constants(values, params.scale)
    spikes, _, state = _adaptive_step(x, state, constants, params.threshold, params.surrogate_alpha)
    return spikes, state


def _adaptive_step(
    x: Tensor, state: AdaptiveState, constants: Tensor, threshold: float, surrogate_alpha: float
) -> tuple[Tensor, Tensor, AdaptiveState]:
    """The step with the fused op's (5, C) constants (:func:`adaptive_constants`): spikes,
    the membrane v before the reset, and the state."""
    beta, gain, decay, coupling, jump = constants
    dtype = x.dtype
    drive = ((x - state.adaptation).to(dtype) * gain).to(dtype)
    spikes, value, membrane = membrane_step(
        drive, state.membrane, beta, threshold, surrogate_alpha, "zero", False
    )
    kept = (state.adaptation * decay).to(dtype)
    added = ((membrane * coupling).to(dtype) + (spikes * jump).to(dtype)).to(dtype)
    return spikes, value, AdaptiveState(membrane, (kept + added).to(dtype))


def _constant(value: float | Tensor) -> Tensor:
    return value if isinstance(value, Tensor) else torch.tensor(value, dtype=torch.float32)


class AdaptiveLeaky(NeuronBase):
    r"""Adaptive LIF neurons (SE-adLIF): (T, B, C) currents -> (T, B, C) spikes.

    The dynamics of the module doc, in a sequence form (one fused op over T, torch and
    Triton backends), a per-step snnTorch form (``init_hidden=True`` or :meth:`step`) and an
    explicit-state Norse form (:meth:`cell_forward`). Resets to zero at once (SE-adLIF).

    Args:
        size: number of neurons.
        beta: membrane decay per step (a number, or a [low, high] range of per-neuron
            decays, drawn uniformly in time constant); default SE-adLIF's tau_u 5-25 steps.
        adaptation_decay: decay of the adaptation current, as ``beta``; default SE-adLIF's
            tau_w 60-300 steps.
        coupling: a, a number or a [low, high] range; default [0, 1].
        jump: b, a number or a [low, high] range; default [0, 2].
        scale: q, which multiplies a and b (120 in SE-adLIF's SHD and SSC runs).
        threshold: firing threshold (> 0).
        learn_beta: the membrane decay is learnable per neuron, in its range.
        learn_adaptation: the adaptation decay, a and b are learnable per neuron, in their
            ranges (a learnable a or b given as a number stays in the default range).
        surrogate_alpha: arctan surrogate slope.
        init_hidden: snnTorch style: every call is one (B, C) step, state inside.
        backend: ``"auto"``, ``"torch"`` or ``"triton"``; the same numbers on each.

    Shape:
        - Input: (T, B, C) currents; (B, C) with ``init_hidden``.
        - Output: (T, B, C) spikes; ``forward_with_membrane`` also returns the (T, B, C)
          membrane v (before the reset).

    Example:
        >>> import torch
        >>> neuron = AdaptiveLeaky(1, 0.5, 0.9, coupling=0.0, jump=10.0, scale=1.0)
        >>> neuron(torch.full((8, 1, 1), 2.5)).flatten().tolist()  # adapting: rarer spikes
        [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    """

    family = "adlif"
    state_type = AdaptiveState

    def __init__(
        self,
        size: int,
        beta: ConstantValue = SE_ADLIF_BETA,
        adaptation_decay: ConstantValue = SE_ADLIF_ADAPTATION_DECAY,
        coupling: ConstantValue = SE_ADLIF_COUPLING,
        jump: ConstantValue = SE_ADLIF_JUMP,
        *,
        scale: float = SE_ADLIF_SCALE,
        threshold: float = 1.0,
        learn_beta: bool = False,
        learn_adaptation: bool = False,
        surrogate_alpha: float = 2.0,
        init_hidden: bool = False,
        backend: Backend = "auto",
    ) -> None:
        check_positive("scale", scale, "SE-adLIF's q")
        learn = check_flag("learn_adaptation", learn_adaptation)
        constants = [
            ConstantSpec("beta", beta, decay=True, learn=learn_beta),
            ConstantSpec("adaptation_decay", adaptation_decay, decay=True, learn=learn),
            ConstantSpec("coupling", coupling, decay=False, learn=learn, bounds=SE_ADLIF_COUPLING),
            ConstantSpec("jump", jump, decay=False, learn=learn, bounds=SE_ADLIF_JUMP),
        ]
        super().__init__(
            constants,
            size=size,
            threshold=threshold,
            surrogate_alpha=surrogate_alpha,
            reset="zero",
            reset_delay=False,
            init_hidden=init_hidden,
            backend=backend,
        )
        self.scale = float(scale)

    def kernel_constants(self, size: int) -> Tensor:
        """(5, C): rows beta, 1 - beta, adaptation decay, (1 - decay) q a, (1 - decay) q b."""
        return adaptive_constants(self._expanded(self.constant_values(), size), self.scale)

    def settings(self) -> dict:
        """The settings of :class:`NeuronBase` and the scale q."""
        return {**super().settings(), "scale": self.scale}

    def step_with_membrane(
        self, x_t: Tensor, state: AdaptiveState
    ) -> tuple[Tensor, Tensor, AdaptiveState]:
        constants = self.kernel_constants(x_t.shape[-1])
        return _adaptive_step(x_t, state, constants, self.threshold, self.surrogate_alpha)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale={self.scale}"
