"""Leaky integrate-and-fire neurons over (T, B, C), numerically equal to snn.Leaky.

The dynamics are snnTorch's ``Leaky`` with reset by subtraction, written as a
pure step function and a multi-step loop:

.. math::
    r_t = H(U_{t-1} - \\theta) \\quad (\\text{detached}) \\\\
    U_t = \\beta U_{t-1} + I_t - r_t \\theta \\\\
    S_t = H(U_t - \\theta)

with the arctan surrogate gradient of snnTorch,
:math:`\\partial S / \\partial U = (\\alpha/2) / (1 + (\\pi \\alpha (U - \\theta) / 2)^2)`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from torch import Tensor

from spatial_layers import ops
from spatial_layers.arguments import is_number
from spatial_layers.neurons.base import (
    ConstantSpec,
    ConstantValue,
    NeuronBase,
    Reset,
    check_currents,
    membrane_step,
)
from spatial_layers.ops import Backend, resolve_backend
from spatial_layers.saved_settings import setting_differences
from spatial_layers.surrogate import ArctanSpike


class LeakyParameters(NamedTuple):
    """LIF constants.

    Attributes:
        beta: membrane decay per step, in (0, 1].
        threshold: firing threshold.
        alpha: arctan surrogate slope (snnTorch's ``surrogate.atan(alpha)``).
    """

    beta: float = 0.9
    threshold: float = 1.0
    alpha: float = 2.0


#: snnTorch's defaults for ``snn.Leaky(beta=0.9)`` with ``surrogate.atan()``.
DEFAULT_PARAMETERS = LeakyParameters()


def leaky_step(
    current: Tensor, membrane: Tensor, params: LeakyParameters = DEFAULT_PARAMETERS
) -> tuple[Tensor, Tensor]:
    """One LIF step. Returns (spikes, membrane), both shaped like ``current``."""
    reset = (membrane > params.threshold).to(membrane.dtype).detach()
    membrane = params.beta * membrane + current - reset * params.threshold
    spikes = ArctanSpike.apply(membrane - params.threshold, params.alpha)
    return spikes, membrane


def _check_membrane(currents: Tensor, membrane: Tensor | None) -> Tensor:
    if currents.dim() < 2:
        raise ValueError(f"expected (T, B, C) currents, got shape {tuple(currents.shape)}")
    if membrane is None:
        return currents.new_zeros(currents.shape[1:])
    if membrane.shape != currents.shape[1:]:
        raise ValueError(
            f"initial membrane must have the shape of one step of the currents, "
            f"{tuple(currents.shape[1:])}, got {tuple(membrane.shape)}"
        )
    return membrane


def leaky_sequence(
    currents: Tensor,
    params: LeakyParameters = DEFAULT_PARAMETERS,
    membrane: Tensor | None = None,
    backend: Backend = "auto",
) -> tuple[Tensor, Tensor]:
    """Runs :func:`leaky_step` over a (T, B, C) sequence of input currents.

    Fused: one autograd node for the whole sequence, with a hand-written backward over
    time (see :func:`~spatial_layers.ops.leaky.leaky_backward_torch`). The forward numbers
    are bit for bit those of :func:`leaky_step` in a loop (and of
    ``snn.Leaky``) on either backend; gradients equal the loop's up to float
    summation order. Only the membrane trace is saved for the backward pass.

    Args:
        currents: (T, B, C) input currents.
        params: LIF constants.
        membrane: (B, C) initial membrane, zeros if None.
        backend: ``"auto"`` (Triton on CUDA tensors when installed, else torch),
            ``"torch"`` (a loop of T in-place torch ops) or ``"triton"`` (one
            kernel per direction, the loop over T inside; see
            :mod:`spatial_layers.ops.triton_lif`).

    Returns:
        spikes and membrane traces, both (T, B, C).
    """
    membrane = _check_membrane(currents, membrane)
    beta, threshold, alpha = (float(value) for value in params)
    return ops.fused_leaky(
        currents, membrane, beta, threshold, alpha, True, resolve_backend(backend, currents)
    )


def leaky_integrate(
    currents: Tensor, beta: float, membrane: Tensor | None = None, backend: Backend = "auto"
) -> Tensor:
    r"""Non-spiking leaky integrator over a (T, B, C) sequence (the readout).

    .. math:: U_t = \beta U_{t-1} + I_t, \qquad U_{-1} = \text{membrane (0 if None)}

    The loop of :func:`leaky_sequence` without threshold and reset, on the
    same backends, in one autograd node.

    Args:
        currents: (T, B, C) input currents.
        beta: membrane decay per step, in (0, 1].
        membrane: (B, C) initial membrane, zeros if None.
        backend: as in :func:`leaky_sequence`.

    Returns:
        (T, B, C) membrane trace.

    Example:
        >>> import torch
        >>> leaky_integrate(torch.ones(3, 1, 1), 0.5).flatten()
        tensor([1.0000, 1.5000, 1.7500])
    """
    membrane = _check_membrane(currents, membrane)
    return ops.fused_leaky(
        currents, membrane, float(beta), math.inf, 0.0, False, resolve_backend(backend, currents)
    )[1]


class LeakyState(NamedTuple):
    """State of LIF neurons: the membrane U (post-reset), (B, C)."""

    membrane: Tensor


class Leaky(NeuronBase):
    r"""LIF neurons (snnTorch's ``Leaky``): (T, B, C) currents -> (T, B, C) spikes.

    .. math::
        v_t = \beta U_{t-1} + I_t, \qquad
        U_t = v_t - \theta H(U_{t-1} - \theta), \qquad S_t = H(U_t - \theta)

    (the default reset: by subtraction, one step late; ``reset`` and ``reset_delay`` as
    :class:`~spatial_layers.neurons.Synaptic`). With a number ``beta``, no ``size``, no
    learning and the default reset, the neurons are constants (no tensor in the state
    dict: its record of :meth:`settings` holds ``beta``) and run :func:`leaky_sequence`'s
    op; otherwise the per-neuron op of :mod:`spatial_layers.ops.neurons` with ``beta`` as
    a buffer or a learnable parameter (see :mod:`spatial_layers.neurons.base`). The
    numbers are the same either way, and a state loads only into neurons with its settings.

    Args:
        beta: membrane decay per step, in (0, 1] (learnable: (0, 1)), or a [low, high]
            range of per-neuron decays (needs ``size``).
        threshold: firing threshold (> 0).
        alpha: arctan surrogate slope.
        size: number of neurons, for per-neuron constants (None: one shared value).
        learn_beta: ``beta`` is a learnable parameter (per neuron with ``size``).
        reset: ``"subtract"`` (the threshold), ``"zero"`` or ``"none"``.
        reset_delay: True: the reset acts one step after the spike (snnTorch); False: at
            once, after the spike (Norse, NIR, Loihi 2).
        init_hidden: snnTorch style: every call is one (B, C) step, state inside.
        backend: ``"auto"``, ``"torch"`` or ``"triton"`` (see :func:`leaky_sequence`);
            the numbers are the same on every backend.

    Shape:
        - Input: (T, B, C) currents; (B, C) with ``init_hidden``.
        - Output: (T, B, C) spikes; ``forward_with_membrane`` also returns the
          (T, B, C) membrane.

    Example:
        >>> import torch
        >>> Leaky(0.5)(torch.full((4, 1, 1), 0.6)).flatten().tolist()
        [0.0, 0.0, 1.0, 0.0]
    """

    family = "lif"
    state_type = LeakyState

    def __init__(
        self,
        beta: ConstantValue = 0.9,
        threshold: float = 1.0,
        alpha: float = 2.0,
        *,
        size: int | None = None,
        learn_beta: bool = False,
        reset: Reset = "subtract",
        reset_delay: bool = True,
        init_hidden: bool = False,
        backend: Backend = "auto",
    ) -> None:
        legacy = (
            is_number(beta)
            and size is None
            and not learn_beta
            and reset == "subtract"
            and reset_delay
        )
        super().__init__(
            [ConstantSpec("beta", beta, decay=True, learn=learn_beta)],
            size=size,
            threshold=threshold,
            surrogate_alpha=alpha,
            reset=reset,
            reset_delay=reset_delay,
            init_hidden=init_hidden,
            backend=backend,
            persistent=not legacy,
        )
        #: Whether the neurons run as a plain LIF with one constant beta (no state dict).
        self.legacy = legacy
        if legacy:
            self.params = LeakyParameters(float(beta), float(threshold), float(alpha))

    def kernel_constants(self, size: int) -> Tensor:
        return self._expanded(self.constant_values(), size)

    def settings(self) -> dict:
        """:meth:`NeuronBase.settings`, with ``beta`` for the one-beta LIF (whose state
        dict holds no tensor that would carry it)."""
        settings = super().settings()
        if self.legacy:
            settings["beta"] = self.params.beta
        return settings

    def _setting_differences(self, saved: dict, state_dict: dict, prefix: str) -> list[str]:
        # The one-beta LIF records beta in its settings, the others as tensors (values, or
        # raw when learned): a state of the other layout is named as such, with the fix
        # (compared as settings alone, it read as beta=None against a number).
        tensors = [state_dict[prefix + k] for k in ("values", "raw") if prefix + k in state_dict]
        if bool(tensors) != self.legacy:
            return super()._setting_differences(saved, state_dict, prefix)
        if self.legacy:
            size = tensors[0].shape[-1]
            layout = (
                f"per-neuron constants for {size} neurons (these neurons: one constant "
                f"beta={self.params.beta}; build them with size={size})"
            )
        else:
            layout = (
                f"one constant beta={saved.get('beta')!r} (these neurons: per-neuron constants; "
                "build them with a number beta and no size, learn_beta=False)"
            )
        return [layout, *setting_differences(saved, NeuronBase.settings(self), "these neurons")]

    def sequence(
        self, currents: Tensor, state: LeakyState | None = None
    ) -> tuple[Tensor, Tensor, LeakyState]:
        if not self.legacy:
            return super().sequence(currents, state)
        check_currents(currents)
        membrane = None
        if state is not None:
            membrane = self._stacked_state(state, currents[0])[0]
        spikes, membranes = leaky_sequence(currents, self.params, membrane, self.backend)
        last = membranes[-1] if membranes.shape[0] > 0 else _check_membrane(currents, membrane)
        return spikes, membranes, LeakyState(last)

    def step_with_membrane(
        self, x_t: Tensor, state: LeakyState
    ) -> tuple[Tensor, Tensor, LeakyState]:
        if self.legacy:
            spikes, membrane = leaky_step(x_t, state.membrane, self.params)
            return spikes, membrane, LeakyState(membrane)
        beta = self.kernel_constants(x_t.shape[-1])[0]
        spikes, value, membrane = membrane_step(
            x_t, state.membrane, beta, self.threshold, self.surrogate_alpha, self.reset,
            self.reset_delay,
        )  # fmt: skip
        return spikes, value, LeakyState(membrane)

    def extra_repr(self) -> str:
        if self.legacy:
            beta, threshold, alpha = self.params
            hidden = ", init_hidden=True" if self.init_hidden else ""
            return (
                f"beta={beta}, threshold={threshold}, alpha={alpha}{hidden}, "
                f"backend={self.backend!r}"
            )
        return super().extra_repr()
