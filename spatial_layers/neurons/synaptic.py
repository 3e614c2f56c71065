r"""Current-based LIF neurons (CUBA, snnTorch's ``Synaptic``) over (T, B, C), per step and fused.

An exponentially decaying synaptic current between the input and a LIF membrane:

.. math::
    I_t = \alpha I_{t-1} + x_t, \qquad
    v_t = \beta U_{t-1} + I_t, \qquad
    U_t = v_t - R_t, \qquad S_t = H(U_t - \theta)

with the reset :math:`R_t` of snnTorch's ``Synaptic`` (``reset``: ``"subtract"``
:math:`\theta r_t`, ``"zero"`` :math:`v_t r_t`, ``"none"``; :math:`r_t = H(U_{t-1} - \theta)`,
detached: one step late), or, with ``reset_delay=False``, at once after the spike
(:math:`S_t = H(v_t - \theta)`, then the reset: Norse's ``LIFCell``, NIR's ``CubaLIF``,
Lava's LIF process on Loihi 2, which reset to zero). The arctan surrogate gradient is
snnTorch's ``surrogate.atan``. With the same constants, :func:`synaptic_step` and the
fused :class:`Synaptic` are bit for bit ``snn.Synaptic`` (float32 constants, float32 or
float64 tensors).

The decays :math:`\alpha` (current) and :math:`\beta` (membrane) are buffers or learnable
per-neuron parameters kept in (0, 1) (:mod:`spatial_layers.neurons.base`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from spatial_layers.neurons.base import (
    ConstantSpec,
    ConstantValue,
    NeuronBase,
    Reset,
    membrane_step,
)
from spatial_layers.ops import Backend

#: The synaptic decay when none is given: Norse's default (tau_syn 5 ms at 1 ms steps).
DEFAULT_ALPHA = 0.8


class SynapticParameters(NamedTuple):
    """CUBA LIF constants.

    Attributes:
        alpha: synaptic current decay per step, a number or (C,) per neuron.
        beta: membrane decay per step, a number or (C,) per neuron.
        threshold: firing threshold.
        surrogate_alpha: arctan surrogate slope.
        reset: ``"subtract"``, ``"zero"`` or ``"none"``.
        reset_delay: the reset acts one step late (snnTorch) or at once (False).
    """

    alpha: float | Tensor = DEFAULT_ALPHA
    beta: float | Tensor = 0.9
    threshold: float = 1.0
    surrogate_alpha: float = 2.0
    reset: Reset = "subtract"
    reset_delay: bool = True


class SynapticState(NamedTuple):
    """State of CUBA neurons, each (B, C): the membrane U (post-reset) and the current I."""

    membrane: Tensor
    current: Tensor


#: The default constants of :func:`synaptic_step`.
DEFAULT_SYNAPTIC = SynapticParameters()


def synaptic_step(
    x: Tensor, state: SynapticState, params: SynapticParameters = DEFAULT_SYNAPTIC
) -> tuple[Tensor, SynapticState]:
    r"""One CUBA step (the module doc's equations). Returns the (B, C) spikes and the state.

    Example:
        >>> import torch
        >>> state = SynapticState(torch.zeros(1), torch.zeros(1))
        >>> for _ in range(3):
        ...     spikes, state = synaptic_step(torch.full((1,), 0.4), state)
        >>> [round(v, 4) for v in (state.current.item(), state.membrane.item())]
        [0.976, 0.948]
    """
    spikes, _, state = _synaptic_step(x, state, params)
    return spikes, state


def _synaptic_step(
    x: Tensor, state: SynapticState, params: SynapticParameters
) -> tuple[Tensor, Tensor, SynapticState]:
    """:func:`synaptic_step` that also returns the membrane trace value (before an
    immediate reset)."""
    dtype = x.dtype
    current = (x + (state.current * _constant(params.alpha)).to(dtype)).to(dtype)
    spikes, value, membrane = membrane_step(
        current, state.membrane, _constant(params.beta), params.threshold,
        params.surrogate_alpha, params.reset, params.reset_delay,
    )  # fmt: skip
    return spikes, value, SynapticState(membrane, current)


def _constant(value: float | Tensor) -> Tensor:
    """A constant as the fused op applies it: a float32 tensor (a tensor as given)."""
    return value if isinstance(value, Tensor) else torch.tensor(value, dtype=torch.float32)


class Synaptic(NeuronBase):
    r"""Current-based LIF neurons (CUBA): (T, B, C) currents -> (T, B, C) spikes.

    The dynamics of the module doc, as snnTorch's ``snn.Synaptic(alpha, beta)`` (bit for bit
    with the same constants), in a sequence form (one fused op over T, torch and Triton
    backends), a per-step snnTorch form (``init_hidden=True`` or :meth:`step`) and an
    explicit-state Norse form (:meth:`cell_forward`).

    Args:
        alpha: synaptic current decay per step, in (0, 1] (learnable: (0, 1)), or a
            [low, high] range of per-neuron decays (needs ``size``).
        beta: membrane decay per step, as ``alpha``.
        threshold: firing threshold (> 0).
        size: number of neurons, for per-neuron constants (None: one value shared).
        learn_alpha: ``alpha`` is a learnable parameter (per neuron with ``size``), kept
            in (0, 1) or its range (:mod:`spatial_layers.neurons.base`).
        learn_beta: the same for ``beta``.
        reset: ``"subtract"`` (the threshold), ``"zero"`` or ``"none"`` (snnTorch's
            ``reset_mechanism``).
        reset_delay: True: the reset acts one step after the spike (snnTorch's default);
            False: at once (Norse's ``LIFCell``, NIR, Loihi 2's LIF process).
        surrogate_alpha: arctan surrogate slope (snnTorch's ``surrogate.atan(alpha)``).
        init_hidden: snnTorch style: every call is one (B, C) step, state inside.
        backend: ``"auto"``, ``"torch"`` or ``"triton"``; the same numbers on each.

    Shape:
        - Input: (T, B, C) currents; (B, C) with ``init_hidden``.
        - Output: (T, B, C) spikes; ``forward_with_membrane`` also returns the (T, B, C)
          membrane (before an immediate reset).

    Example:
        >>> import torch
        >>> neuron = Synaptic(alpha=0.5, beta=0.5)
        >>> neuron(torch.full((4, 1, 1), 0.4)).flatten().tolist()
        [0.0, 0.0, 1.0, 0.0]
    """

    family = "cuba"
    state_type = SynapticState

    def __init__(
        self,
        alpha: ConstantValue = DEFAULT_ALPHA,
        beta: ConstantValue = 0.9,
        threshold: float = 1.0,
        *,
        size: int | None = None,
        learn_alpha: bool = False,
        learn_beta: bool = False,
        reset: Reset = "subtract",
        reset_delay: bool = True,
        surrogate_alpha: float = 2.0,
        init_hidden: bool = False,
        backend: Backend = "auto",
    ) -> None:
        super().__init__(
            [
                ConstantSpec("beta", beta, decay=True, learn=learn_beta),
                ConstantSpec("alpha", alpha, decay=True, learn=learn_alpha),
            ],
            size=size,
            threshold=threshold,
            surrogate_alpha=surrogate_alpha,
            reset=reset,
            reset_delay=reset_delay,
            init_hidden=init_hidden,
            backend=backend,
        )

    def kernel_constants(self, size: int) -> Tensor:
        """(2, C): rows beta, alpha."""
        return self._expanded(self.constant_values(), size)

    def parameters_for(self, size: int) -> SynapticParameters:
        """The :class:`SynapticParameters` of :func:`synaptic_step` for ``size`` neurons."""
        beta, alpha = self.kernel_constants(size)
        return SynapticParameters(
            alpha, beta, self.threshold, self.surrogate_alpha, self.reset, self.reset_delay
        )

    def step_with_membrane(
        self, x_t: Tensor, state: SynapticState
    ) -> tuple[Tensor, Tensor, SynapticState]:
        return _synaptic_step(x_t, state, self.parameters_for(x_t.shape[-1]))
