r"""What the neuron modules share: per-neuron constants, the three call forms, the state.

Constants
---------
A neuron's constants (decays :math:`\beta, \alpha, \rho`; SE-adLIF's coupling :math:`a`
and jump :math:`b`) are given as a number (every neuron the same), a pair ``[low,
high]`` (one value per neuron, drawn uniformly: decays uniformly in their time constant
:math:`\tau = -1 / \ln \beta` steps, as SE-adLIF draws :math:`\tau`; others uniformly in
value) or a (C,) tensor of per-neuron values (as snnTorch's tensor ``beta``). Each is a
buffer, or with ``learn`` a learnable per-neuron parameter kept in its range by
reparameterisation, never clamped:

.. math::
    \theta = \mathrm{low} + (\mathrm{high} - \mathrm{low})\,
        (\epsilon + (1 - 2 \epsilon)\, \mathrm{sigmoid}(r)), \qquad \epsilon = 10^{-6}

where :math:`\theta` is the decay itself in (0, 1) for a decay given as one number, its time
constant :math:`\tau` in [:math:`\tau(\mathrm{low})`, :math:`\tau(\mathrm{high})`] for a
decay given as a range (then :math:`\beta = e^{-1/\tau}`), and the value in its range for
the others (:math:`a, b`: the pair given, or the family's default range). Why a sigmoid: the
value can never leave its range (no NaN, a decay never reaches 0 or 1) and the gradient
stays finite and non-zero everywhere, where a clamp in the forward pass stops the gradient
at the edges and a clamp after the optimizer step needs a hook in the training loop.

The learnable raw values of a population are one (R, C) :class:`~torch.nn.Parameter`
(``raw``) and the fixed values one (R', C) buffer (``values``), so that a population adds
one tensor to autograd and to the optimizer, not one per constant (a training step's op
count; :mod:`benchmarks.op_count`). Without ``size`` every neuron shares one value (a
(R, 1) tensor), as a scalar ``beta`` of snnTorch.

Call forms
----------
- sequence: ``neuron(currents)`` on (T, B, C), one fused op (:mod:`spatial_layers.ops`);
  ``forward_with_membrane`` also returns the membrane trace, ``sequence(currents,
  state)`` takes and returns the explicit state (chunks of truncated BPTT);
- snnTorch style: ``neuron.step(x_t)`` (or a neuron built with ``init_hidden=True``,
  whose every call is a step), the state inside; ``reset_state()`` starts a sequence,
  ``detach_state()`` cuts the gradient; :func:`spatial_layers.reset` reaches them;
- Norse style: ``neuron.cell_forward(x_t, state=None) -> (spikes, state)``, or the
  :class:`NeuronCell` view of it (``norse.torch.SequentialState`` treats it as stateful).

The three give the same numbers, bit for bit: the step functions run the operations of
the fused loop in its order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from spatial_layers import ops
from spatial_layers.arguments import (
    check_count,
    check_fits,
    check_flag,
    check_positive,
    is_number,
)
from spatial_layers.ops import BACKENDS, Backend, resolve_backend
from spatial_layers.ops.neuron_spec import RESETS, STATE_COUNT
from spatial_layers.saved_settings import refuse_other_settings, setting_differences
from spatial_layers.surrogate import ArctanSpike

Reset = Literal["subtract", "zero", "none"]
#: A constant as one number for every neuron, a [low, high] range of per-neuron values, or
#: a (C,) tensor of per-neuron values.
ConstantValue = float | Sequence[float] | Tensor
#: A learnable constant stays this fraction of its range inside it (sigmoid saturates to
#: exactly 0 or 1 in float32 for large raw values; the margin keeps a decay in (0, 1)).
EDGE = 1e-6


class ConstantSpec(NamedTuple):
    """How a neuron family declares one of its constants.

    Attributes:
        name: the argument's name (``"beta"``, ``"alpha"``, ...).
        value: a number or a [low, high] range.
        decay: a decay per step, in (0, 1] (learnable: (0, 1)); else any number.
        learn: a learnable parameter.
        bounds: for a number that is not a decay, the range its learnable form stays in.
    """

    name: str
    value: ConstantValue
    decay: bool
    learn: bool
    bounds: tuple[float, float] | None = None


def is_range(value: ConstantValue) -> bool:
    """A [low, high] range (a number or a tensor of values is not one)."""
    return not (is_number(value) or isinstance(value, Tensor))


def is_per_neuron(value: ConstantValue) -> bool:
    """One value per neuron: a range or a (C,) tensor."""
    return is_range(value) or (isinstance(value, Tensor) and value.dim() > 0)


def check_constant_kind(spec: ConstantSpec) -> None:
    """ValueError naming the argument unless its value is a number (not a bool), a
    [low, high] list or tuple, or a tensor (a string or a bool is none of them)."""
    value = spec.value
    if not (is_number(value) or isinstance(value, list | tuple | Tensor)):
        raise ValueError(
            f"{spec.name} must be a number, a [low, high] pair or a (C,) tensor, got "
            f"{value!r} ({type(value).__name__})"
        )


def check_constant(spec: ConstantSpec) -> tuple[float, float]:
    """The (low, high) of a constant (equal for a number, the extremes of a tensor);
    ValueError naming the argument."""
    name, value = spec.name, spec.value
    if isinstance(value, Tensor):
        if value.dim() > 1 or value.numel() == 0:
            raise ValueError(f"{name} as a tensor must be 0-d or (C,), got {tuple(value.shape)}")
        low, high = float(value.min()), float(value.max())
    elif is_range(value):
        pair = list(value)
        if len(pair) != 2 or not all(is_number(v) for v in pair):
            raise ValueError(f"{name} must be a number or a [low, high] pair, got {value!r}")
        low, high = (float(v) for v in pair)
        if not low <= high:
            raise ValueError(f"{name}=[{low}, {high}] must have low <= high")
    else:
        low = high = float(value)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if spec.decay:
        upper_open = spec.learn or is_range(value)  # a range of decays in (0, 1)
        if not (low > 0 and (high < 1 if upper_open else high <= 1)):
            interval = "(0, 1)" if upper_open else "(0, 1]"
            what = "a learnable decay" if spec.learn else "a decay range"
            if not upper_open:
                what = "a decay"
            raise ValueError(f"{name} is {what} per step and must be in {interval}, got {value!r}")
    elif spec.learn and not is_range(value):
        bound_low, bound_high = spec.bounds
        if not bound_low <= low <= bound_high:
            raise ValueError(
                f"a learnable {name} stays in [{bound_low}, {bound_high}]; got {value!r}: give "
                f"{name} as a [low, high] range to learn it in another one"
            )
    return low, high


def time_constant(decay: float) -> float:
    """:math:`\\tau = -1 / \\ln \\beta` in steps (a decay per step of ``beta``)."""
    return -1.0 / math.log(decay)


class ConstantLayout(NamedTuple):
    """Where a family's constants live: rows of ``values`` (fixed) and ``raw`` (learned)."""

    fixed: list[int]
    learned: list[int]


class NeuronBase(nn.Module):
    """Per-neuron constants and the three call forms of a neuron family (see the module doc).

    Subclasses set :attr:`family`, :attr:`state_type` and implement :meth:`kernel_constants`
    (the (K, C) constants of :mod:`spatial_layers.ops.neurons` from :meth:`constant_values`)
    and :meth:`step_with_membrane` (one step, the pure function of the family).
    """

    family: str
    state_type: type

    def __init__(
        self,
        constants: list[ConstantSpec],
        *,
        size: int | None,
        threshold: float,
        surrogate_alpha: float,
        reset: Reset,
        reset_delay: bool,
        init_hidden: bool,
        backend: Backend,
        persistent: bool = True,
    ) -> None:
        super().__init__()
        if size is not None:
            size = check_count("size", size, 1, "neurons; None for one shared value")
            check_fits(
                f"{type(self).__name__}(size={size})",
                len(constants) * size,
                "constants",
                8,  # drawn in float64 (_fixed_values)
                "cpu",
                "use fewer neurons",
            )
        check_positive("threshold", threshold)
        check_positive("surrogate_alpha", surrogate_alpha)
        check_flag("reset_delay", reset_delay)
        check_flag("init_hidden", init_hidden)
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        for spec in constants:
            check_flag(f"learn_{spec.name}", spec.learn)
            check_constant_kind(spec)
        ranges = [c.name for c in constants if is_range(c.value)]
        if size is None and ranges:
            raise ValueError(
                f"{ranges[0]} is a range of per-neuron values: give the number of neurons, size="
            )
        for spec in constants:
            value = spec.value
            if isinstance(value, Tensor) and value.dim() == 1:
                if size is None:
                    size = value.numel()
                if value.numel() != size:
                    raise ValueError(
                        f"{spec.name} holds {value.numel()} values for {size} neurons (size)"
                    )
        self.size = size
        self.threshold = float(threshold)
        self.surrogate_alpha = float(surrogate_alpha)
        self.reset = reset
        self.reset_delay = bool(reset_delay)
        self.init_hidden = bool(init_hidden)
        self.backend = backend
        self.constant_names = tuple(c.name for c in constants)
        self._build_constants(constants, persistent)
        self._state = None
        self._state_backward = False

    # ---------------------------------------------------------------- constants
    def _build_constants(self, constants: list[ConstantSpec], persistent: bool) -> None:
        columns = self.size or 1
        fixed, learned = [], []
        values, raws, lows, spans, taus = [], [], [], [], []
        for row, spec in enumerate(constants):
            low, high = check_constant(spec)
            if not spec.learn:
                fixed.append(row)
                values.append(_fixed_values(spec, low, high, columns))
                continue
            learned.append(row)
            tau = spec.decay and is_range(spec.value)
            if spec.decay and not tau:
                bottom, top = 0.0, 1.0
            elif tau:
                bottom, top = time_constant(low), time_constant(high)
            elif is_range(spec.value):
                bottom, top = low, high
            else:
                bottom, top = spec.bounds
            if is_range(spec.value):
                fraction = torch.rand(columns, dtype=torch.float64)
            elif isinstance(spec.value, Tensor):
                given = spec.value.detach().to(torch.float64).expand(columns)
                fraction = (given - bottom) / (top - bottom)
            else:
                fraction = torch.full((columns,), (low - bottom) / (top - bottom))
            inside = ((fraction - EDGE) / (1 - 2 * EDGE)).clamp(EDGE, 1 - EDGE)
            raws.append(torch.logit(inside))
            lows.append(bottom + EDGE * (top - bottom))
            spans.append((1 - 2 * EDGE) * (top - bottom))
            taus.append(tau)
        self.layout = ConstantLayout(fixed, learned)
        dtype = torch.get_default_dtype()
        if fixed:
            self.register_buffer("values", torch.stack(values).to(dtype), persistent=persistent)
        else:
            self.values = None
        if learned:
            self.raw = nn.Parameter(torch.stack(raws).to(dtype))
            self.register_buffer("low", torch.tensor(lows, dtype=dtype)[:, None])
            self.register_buffer("span", torch.tensor(spans, dtype=dtype)[:, None])
            self.register_buffer("tau_rows", torch.tensor(taus)[:, None])
            self.any_tau = any(taus)
        else:
            self.raw = None
        order = torch.tensor([*fixed, *learned]).argsort()
        self.register_buffer("order", order, persistent=False)

    def constant_values(self) -> Tensor:
        """The (R, C) values of the declared constants, in their order (C = 1 without
        ``size``): fixed ones as stored, learned ones through their reparameterisation."""
        if self.raw is None:
            return self.values
        learned = torch.addcmul(self.low, self.span, torch.sigmoid(self.raw))
        if self.any_tau:
            learned = torch.where(self.tau_rows, torch.exp(-learned.reciprocal()), learned)
        if self.values is None:
            return learned
        return torch.cat([self.values, learned])[self.order]

    def constant(self, name: str) -> Tensor:
        """One constant's (C,) values (detached), e.g. ``neuron.constant("beta")``."""
        return self.constant_values()[self.constant_names.index(name)].detach()

    def kernel_constants(self, size: int) -> Tensor:
        """The (K, C) constants of :mod:`spatial_layers.ops.neurons` for ``size`` neurons."""
        raise NotImplementedError

    def _expanded(self, values: Tensor, size: int) -> Tensor:
        if self.size is not None and size != self.size:
            raise ValueError(
                f"this {type(self).__name__} has {self.size} neurons, got input with "
                f"{size} channels"
            )
        return values.expand(values.shape[0], size)

    # ------------------------------------------------------------ the state dict
    def settings(self) -> dict:
        """What changes :meth:`forward` besides the tensors, as plain data: the family,
        threshold, surrogate slope and reset. Saved in the state dict, which then loads
        only into neurons built with the same (``load_state_dict`` names what differs)."""
        return {
            "family": self.family,
            "threshold": self.threshold,
            "surrogate_alpha": self.surrogate_alpha,
            "reset": self.reset,
            "reset_delay": self.reset_delay,
        }

    def get_extra_state(self) -> dict:
        return self.settings()

    def set_extra_state(self, state: dict) -> None:
        """Nothing to restore: ``load_state_dict`` compared the settings before."""

    def _setting_differences(self, saved: dict, state_dict: dict, prefix: str) -> list[str]:
        """What the ``saved`` settings (and the state under ``prefix``) hold that these
        neurons do not, one phrase each: ``name=saved (these neurons: value)``."""
        return setting_differences(saved, self.settings(), "these neurons")

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        key = prefix + "_extra_state"
        saved = state_dict.get(key)
        if isinstance(saved, dict) and refuse_other_settings(
            error_msgs, prefix.rstrip(".") or type(self).__name__, "neurons",
            self._setting_differences(saved, state_dict, prefix),
            "build them with the saved settings",
        ):  # fmt: skip
            return
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if key not in state_dict and key in missing_keys:
            # Saved before neurons recorded their settings (the one-beta LIF: before it
            # recorded its beta): the tensors load as they did then.
            missing_keys.remove(key)

    # ----------------------------------------------------------------- the state
    def initial_state(self, like: Tensor) -> NamedTuple:
        """The zero state for one (B, C) step like ``like``."""
        return self.state_type(*(torch.zeros_like(like) for _ in self.state_type._fields))

    def _stacked_state(self, state: NamedTuple | None, like: Tensor) -> Tensor:
        if state is None:
            return like.new_zeros((STATE_COUNT[self.family], *like.shape))
        if not isinstance(state, self.state_type):
            raise TypeError(
                f"state must be a {self.state_type.__name__}, got {type(state).__name__}"
            )
        for name, value in zip(state._fields, state, strict=True):
            if value.shape != like.shape:
                raise ValueError(
                    f"state.{name} must have the shape of one step, {tuple(like.shape)}, "
                    f"got {tuple(value.shape)}; call reset_state() between sequences"
                )
        return torch.stack(tuple(state))

    # ------------------------------------------------------------------ sequence
    def forward(self, x: Tensor) -> Tensor:
        """(T, B, C) currents -> (T, B, C) spikes; one (B, C) step with ``init_hidden``."""
        if self.init_hidden:
            return self.step(x)
        return self.forward_with_membrane(x)[0]

    def forward_with_membrane(self, currents: Tensor) -> tuple[Tensor, Tensor]:
        """(spikes, membranes), both (T, B, C), from zero state."""
        spikes, membranes, _ = self.sequence(currents)
        return spikes, membranes

    def sequence(
        self, currents: Tensor, state: NamedTuple | None = None
    ) -> tuple[Tensor, Tensor, NamedTuple]:
        """(spikes, membranes, final state) of (T, B, C) ``currents`` from ``state``
        (zeros if None): the fused op, one autograd node. The membrane trace is the value
        compared with the threshold (before an immediate reset)."""
        check_currents(currents)
        stacked = self._stacked_state(state, currents.new_zeros(currents.shape[1:]))
        spikes, traces = self._run(currents, stacked)
        return spikes, traces[0], self._final_state(spikes, traces, stacked)

    def _run(self, currents: Tensor, stacked: Tensor) -> tuple[Tensor, Tensor]:
        constants = self.kernel_constants(currents.shape[-1])
        return ops.fused_neurons(
            currents, stacked, constants, self.family, self.threshold, self.surrogate_alpha,
            self.reset, self.reset_delay, resolve_backend(self.backend, currents),
        )  # fmt: skip

    def _final_state(self, spikes: Tensor, traces: Tensor, stacked: Tensor) -> NamedTuple:
        if traces.shape[1] == 0:
            return self.state_type(*stacked.unbind(0))
        last = [trace[-1] for trace in traces]
        if not self.reset_delay:
            last[0] = reset_membrane(last[0], spikes[-1].detach(), self.threshold, self.reset)
        return self.state_type(*last)

    # -------------------------------------------------------------- step forms
    def step_with_membrane(
        self, x_t: Tensor, state: NamedTuple
    ) -> tuple[Tensor, Tensor, NamedTuple]:
        """One step of the family's pure step function with this module's constants:
        spikes, the membrane trace value (the one compared with the threshold) and the
        new state."""
        raise NotImplementedError

    def cell_forward(
        self, x_t: Tensor, state: NamedTuple | None = None
    ) -> tuple[Tensor, NamedTuple]:
        """One (B, C) step with the state explicit (Norse cell convention); None: zeros."""
        spikes, _, state = self.cell_forward_with_membrane(x_t, state)
        return spikes, state

    def cell_forward_with_membrane(
        self, x_t: Tensor, state: NamedTuple | None = None
    ) -> tuple[Tensor, Tensor, NamedTuple]:
        """:meth:`cell_forward` that also returns the (B, C) membrane trace value, as
        :meth:`forward_with_membrane` traces it."""
        if state is None:
            state = self.initial_state(x_t)
        else:
            self._stacked_state(state, x_t)  # checks it
        return self.step_with_membrane(x_t, state)

    def step(self, x_t: Tensor) -> Tensor:
        """snnTorch style: one (B, C) step -> spikes, the state kept inside.

        Over a sequence, the same numbers as the sequence call. Call :meth:`reset_state`
        between sequences and :meth:`detach_state` between the chunks of truncated BPTT.
        """
        state = self._state
        if self._state_backward and state is not None and state[0].requires_grad:
            raise RuntimeError(
                f"a backward pass went through the state this {type(self).__name__} keeps "
                "between steps, and freed its graph: call detach_state() to go on with "
                "the sequence (truncated BPTT) or reset_state() to start a new one"
            )
        if self._state is not None and self._state[0].shape != x_t.shape:
            self._state = None  # a new batch shape starts a new sequence, as snnTorch does
        spikes, self._state = self.cell_forward(x_t, self._state)
        if spikes.requires_grad:
            spikes.register_hook(self._note_backward)
        return spikes

    def _note_backward(self, grad: Tensor) -> None:
        self._state_backward = True

    @property
    def state(self) -> NamedTuple | None:
        """The state :meth:`step` keeps (None before the first step)."""
        return self._state

    def reset_state(self) -> None:
        """Forgets the state kept by :meth:`step`: the next step starts a sequence."""
        self._state = None
        self._state_backward = False

    def detach_state(self) -> None:
        """Truncated BPTT: keeps the state of :meth:`step`, cuts the gradient through it."""
        if self._state is not None:
            self._state = self.state_type(*(value.detach() for value in self._state))
        self._state_backward = False

    def extra_repr(self) -> str:
        learned = [self.constant_names[row] for row in self.layout.learned]
        parts = [
            f"size={self.size}",
            f"threshold={self.threshold}",
            f"reset={self.reset!r}",
            f"reset_delay={self.reset_delay}",
        ]
        if learned:
            parts.append(f"learned={learned}")
        if self.init_hidden:
            parts.append("init_hidden=True")
        return ", ".join([*parts, f"backend={self.backend!r}"])


def check_currents(currents: Tensor) -> None:
    """ValueError unless ``currents`` is a (T, B, C) floating-point sequence (integer or bool
    spikes would fail deep inside the fused op)."""
    if currents.dim() != 3:
        raise ValueError(f"expected (T, B, C) currents, got shape {tuple(currents.shape)}")
    if not currents.is_floating_point():
        raise ValueError(
            f"currents must be floating point, got {currents.dtype}: convert them with "
            "currents.float() (or .to(the neurons' dtype))"
        )


def _fixed_values(spec: ConstantSpec, low: float, high: float, columns: int) -> Tensor:
    if isinstance(spec.value, Tensor):
        return spec.value.detach().to(torch.float64).expand(columns).clone()
    if not is_range(spec.value):
        return torch.full((columns,), low, dtype=torch.float64)
    fraction = torch.rand(columns, dtype=torch.float64)
    if spec.decay:
        tau_low, tau_high = time_constant(low), time_constant(high)
        return torch.exp(-1.0 / (tau_low + (tau_high - tau_low) * fraction))
    return low + (high - low) * fraction


def reset_membrane(value: Tensor, spike: Tensor, threshold: float, reset: str) -> Tensor:
    """The membrane after a reset of ``value`` by a detached ``spike`` (0 or 1): ``value -
    threshold * spike``, ``value - value * spike`` or ``value`` (the ops of the fused loop)."""
    if reset == "subtract":
        return value - threshold * spike
    if reset == "zero":
        return value - value * spike
    return value


def membrane_step(
    drive: Tensor,
    membrane: Tensor,
    beta: Tensor | float,
    threshold: float,
    surrogate_alpha: float,
    reset: str,
    reset_delay: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""The membrane update and spike every family shares, for one step.

    .. math::
        v_t = \beta U_{t-1} + \mathrm{drive}_t

    then, with a late reset (``reset_delay``, snnTorch): :math:`U_t = \mathrm{reset}(v_t,
    H(U_{t-1} - \theta))`, :math:`S_t = H(U_t - \theta)`; with an immediate one:
    :math:`S_t = H(v_t - \theta)`, :math:`U_t = \mathrm{reset}(v_t, S_t)` (resets detached,
    :func:`reset_membrane`).

    Returns:
        spikes (arctan surrogate), the membrane trace value (the one compared with the
        threshold) and the post-reset membrane :math:`U_t`.
    """
    dtype = drive.dtype
    scaled = (membrane * beta).to(dtype)
    value = (drive + scaled).to(dtype)
    if reset_delay:
        before = (membrane > threshold).to(dtype).detach()
        value = reset_membrane(value, before, threshold, reset).to(dtype)
        spikes = ArctanSpike.apply(value - threshold, surrogate_alpha)
        return spikes, value, value
    spikes = ArctanSpike.apply(value - threshold, surrogate_alpha)
    after = reset_membrane(value, spikes.detach(), threshold, reset).to(dtype)
    return spikes, value, after


class NeuronCell(nn.Module):
    """Norse-style cell view of a neuron module (shares its constants):
    ``forward(x_t, state=None) -> (spikes, state)``.

    Shape:
        - Input: (B, C) at one step.
        - Output: (B, C) spikes and the neuron's state NamedTuple.
    """

    def __init__(self, neuron: NeuronBase) -> None:
        super().__init__()
        self.neuron = neuron

    def forward(self, x_t: Tensor, state: NamedTuple | None = None) -> tuple[Tensor, NamedTuple]:
        return self.neuron.cell_forward(x_t, state)
