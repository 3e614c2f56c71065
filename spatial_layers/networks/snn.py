"""SpatialSNN: a spiking classifier of stacked spatial-delay populations, from plain arguments.

A :class:`SpatialSNN` is the model every recipe trains::

    input spikes --SpatialDelay--> LIF --SpatialDelay--> LIF ... --SpatialDelay--> leaky readout

built from :class:`~spatial_layers.networks.population.HiddenPopulation` blocks (each
optionally with batch norm and delayed recurrence) and a
:class:`~spatial_layers.networks.population.LeakyReadout`.

Each population (the inputs, every hidden layer, the outputs) owns ONE
:class:`~spatial_layers.NeuronPositions`; the layer that feeds a population and
the layer it feeds hold the same module, so moving a neuron moves the delays of
all its synapses, in and out (and of its recurrent synapses in the recurrent
variant). The readout is a non-spiking leaky integrator whose membrane the
classifier turns into logits.

The network is configured in one place, :class:`SpatialSNN`'s signature (plain
types, checked in ``__init__``): a recipe of the training app gives it as the
classifier's ``model.net`` (``class_path`` / ``init_args``), and the network records
its arguments (``net.init_args``) so that a checkpoint can rebuild it. The option types
(``DelayMode``, ``KernelKind``, ``PositionInit``) are those of the layers that check them.
A hardware profile (:mod:`spatial_layers.hardware`) plugs in through
:attr:`SpatialSNN.hardware_profile`, without the network knowing the target.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from spatial_layers import hardware
from spatial_layers.accounting import ParameterCount, count_parameters
from spatial_layers.arguments import (
    ArgumentTypeError,
    check_count,
    check_flag,
    check_positive,
    is_number,
)
from spatial_layers.delay import DelayMode, SpatialDelay, delay_layers
from spatial_layers.finite import check_input, register_flag
from spatial_layers.functional import DelayMethod
from spatial_layers.geometry import NeuronPositions, PositionInit, default_position_scale
from spatial_layers.kernels import KernelKind
from spatial_layers.networks.norm_leaky import TimeBatchNorm
from spatial_layers.networks.population import HiddenPopulation, LeakyReadout
from spatial_layers.neurons import AdaptiveLeaky, Leaky, LeakyParameters, NeuronBase, Synaptic
from spatial_layers.neurons.adaptive import (
    SE_ADLIF_ADAPTATION_DECAY,
    SE_ADLIF_COUPLING,
    SE_ADLIF_JUMP,
    SE_ADLIF_SCALE,
)
from spatial_layers.neurons.base import ConstantValue, time_constant
from spatial_layers.neurons.synaptic import DEFAULT_ALPHA
from spatial_layers.ops import Backend
from spatial_layers.saved_settings import refuse_other_settings, setting_differences
from spatial_layers.spike_dropout import SpikeDropout


class SNNOutput(NamedTuple):
    """Everything one forward pass of :class:`SpatialSNN` produces.

    Attributes:
        membrane: (T, B, num_classes) readout membrane.
        spikes: (T, B, num_classes) output spikes when ``spiking_output``,
            else None.
        hidden_spikes: one (T, B, H_l) spike tensor per hidden layer (empty
            when ``run`` was told not to record them).
        hidden_rates: one 0-d tensor per hidden layer, its mean spike rate
            (detached; always recorded).
    """

    membrane: Tensor
    spikes: Tensor | None
    hidden_spikes: list[Tensor]
    hidden_rates: list[Tensor]


def swap_time_and_batch(output: SNNOutput) -> SNNOutput:
    """``output`` with its (T, B, ...) tensors as (B, T, ...), or back (rates unchanged)."""
    return SNNOutput(
        output.membrane.transpose(0, 1),
        None if output.spikes is None else output.spikes.transpose(0, 1),
        [spikes.transpose(0, 1) for spikes in output.hidden_spikes],
        output.hidden_rates,
    )


def plain_value(name: str, value: object) -> object:
    """A config value as builtin types: bool, int, float, str, None, or a list of them.

    A config may pass int and float subclasses (a parser's restricted numbers), which a
    ``weights_only`` checkpoint cannot hold. Anything else (a numpy int or float32, which
    the network would use as given) is an :class:`ArgumentTypeError` naming ``name``.

    >>> class Count(int): ...
    >>> plain_value("sizes", (Count(3), 2.5)), type(plain_value("size", Count(3)))
    ([3, 2.5], <class 'int'>)
    """
    if value is None or isinstance(value, bool):
        return value
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, list | tuple):
        return [plain_value(name, item) for item in value]
    raise ArgumentTypeError(
        f"{name} holds {value!r} ({type(value).__name__}), not a plain int, float, str, bool "
        "or list: SpatialSNN records its arguments to rebuild itself; pass int(...) or float(...)"
    )


#: Where the state dict of networks saved before the blocks (spsnn 0.1.0) kept its layers.
_FLAT_LAYOUT = (
    (re.compile(r"recurrent_layers\.(\d+)\."), r"hidden.\1.recurrent."),
    (re.compile(r"norms\.(\d+)\."), r"hidden.\1.norm."),
    (re.compile(r"layers\.(\d+)\."), None),  # hidden.<l>.synapses, or readout.synapses
)


#: SpatialSNN arguments a state may be loaded across: they shape only the initial
#: tensors (which the state replaces) or pick an implementation with the same numbers
#: (the LIF backend; the delay algorithm, to float rounding).
LOADABLE_ACROSS = (
    "position_init", "position_scale", "init_gain", "backend", "method", "batch_first"
)  # fmt: skip

#: SpatialSNN's on/off arguments (a string such as "false" is refused, not read as true).
FLAGS = ("recurrent", "batch_norm", "bias", "spiking_output", "batch_first")

NeuronFamily = Literal["lif", "cuba", "adlif"]
#: The neuron families a SpatialSNN builds its hidden populations from.
NEURON_FAMILIES: tuple[str, ...] = ("lif", "cuba", "adlif")
#: Arguments that only some families take (the others must leave them None).
FAMILY_ARGUMENTS = {
    "alpha": ("cuba",),
    "adaptation_decay": ("adlif",),
    "adaptation_coupling": ("adlif",),
    "adaptation_jump": ("adlif",),
    "adaptation_scale": ("adlif",),
}
#: Each family's values for the arguments left None.
FAMILY_DEFAULTS = {
    "lif": {"reset": "subtract", "reset_delay": True},
    "cuba": {"reset": "subtract", "reset_delay": True, "alpha": DEFAULT_ALPHA},
    "adlif": {
        "reset": "zero",
        "reset_delay": False,
        "adaptation_decay": list(SE_ADLIF_ADAPTATION_DECAY),
        "adaptation_coupling": list(SE_ADLIF_COUPLING),
        "adaptation_jump": list(SE_ADLIF_JUMP),
        "adaptation_scale": SE_ADLIF_SCALE,
    },
}


def family_arguments(arguments: dict) -> dict:
    """The neuron arguments of a SpatialSNN's ``arguments`` with the family's defaults
    filled in where they are None."""
    family = arguments.get("neuron", "lif")
    resolved = {name: arguments.get(name) for name in ("reset", "reset_delay", *FAMILY_ARGUMENTS)}
    for name, value in FAMILY_DEFAULTS.get(family, {}).items():
        if resolved.get(name) is None:
            resolved[name] = value
    return resolved


class SpatialSNN(nn.Module):
    """Feed-forward (or recurrent) spiking classifier with spatial synaptic delays.

    Args:
        num_inputs: input channels C_in.
        num_classes: readout neurons.
        hidden_sizes: neurons per hidden LIF layer (at least one layer).
        delays: ``"spatial"`` (from coordinates), ``"free"`` (one learnable
            delay per synapse, the DCLS-delays baseline) or ``"none"``.
        dim: dimension D of the space (``"spatial"`` only).
        max_delay: largest delay in time steps.
        kernel: delay kernel during training, ``"gauss"``, ``"linear"``
            or ``"round"``.
        velocity: conduction velocity, space units per step.
        position_init: ``"uniform"`` (U[0, scale] per coordinate) or
            ``"normal"`` (N(0, scale^2)).
        position_scale: size of the initial cloud; default
            ``velocity * max_delay / sqrt(dim)``, so the largest initial
            distances span the delay range.
        beta: membrane decay per step of the hidden neurons (every family), or a
            ``[low, high]`` range of per-neuron decays (drawn uniformly in time
            constant, as SE-adLIF draws them).
        neuron: the hidden neurons' family: ``"lif"`` (snnTorch's ``Leaky``), ``"cuba"``
            (current-based, snnTorch's ``Synaptic``) or ``"adlif"`` (SE-adLIF's adaptive
            LIF); :mod:`spatial_layers.neurons`.
        learn_beta: every time constant of the hidden neurons (``beta``; ``alpha``; the
            adaptation's decay, coupling and jump) is a learnable per-neuron parameter,
            kept in its range (:mod:`spatial_layers.neurons.base`).
        alpha: ``"cuba"``: synaptic current decay per step, or a range (default 0.8).
        reset: ``"subtract"``, ``"zero"`` or ``"none"`` (lif, cuba; default
            ``"subtract"``); adlif resets to zero (its only reset).
        reset_delay: the reset acts one step after the spike (snnTorch, the default of
            lif and cuba) or at once (False: Norse, NIR, Loihi 2's LIF process; adlif).
        adaptation_decay: ``"adlif"``: decay of the adaptation current per step, or a
            range (default SE-adLIF's tau_w 60-300 steps).
        adaptation_coupling: ``"adlif"``: a, a number or a range (default [0, 1]).
        adaptation_jump: ``"adlif"``: b, a number or a range (default [0, 2]).
        adaptation_scale: ``"adlif"``: q, which multiplies a and b (default 120).
        threshold: firing threshold of every spiking neuron.
        surrogate_alpha: arctan surrogate slope.
        readout_beta: decay of the readout membrane (default ``beta``; for a range, the
            decay of its mean time constant).
        recurrent: add delayed hidden -> hidden connections in every
            hidden layer.
        batch_norm: BatchNorm1d over channels after every hidden layer's
            synaptic input (before the LIF), as DCLS-delays.
        dropout: dropout probability on hidden spikes (DCLS-delays: 0.4).
        bias: learnable bias in every delayed layer.
        spiking_output: the readout also spikes (LIF with reset), for a
            spike-count readout; its membrane is still returned.
        init_gain: multiplies every layer's initial weights (``nn.Linear``'s
            init, U(-1/sqrt(C_in), 1/sqrt(C_in))); raise it when few input
            spikes must drive the first layer over threshold (Yin-Yang).
        backend: implementation of the LIF and readout loops over time,
            ``"auto"`` (Triton on CUDA when installed, else torch), ``"torch"``
            or ``"triton"`` (:func:`spatial_layers.leaky_sequence`,
            :func:`~spatial_layers.neurons.recurrent_leaky`); the same numbers
            on every backend (recurrent layers on Triton: to float rounding).
        method: algorithm of every delayed layer's sequence forward
            (``SpatialDelay(method=...)``): ``"auto"``, ``"dense"``, ``"fft"`` or ``"dft"``.
        batch_first: the input and the output are (B, T, C), as ``nn.RNN(batch_first=True)``
            and tonic's ``PadTensors()`` batches; default time-major (T, B, C).

    Shape:
        - Input: (T, B, num_inputs) spikes, time-major; (B, T, num_inputs) with
          ``batch_first``.
        - Output: (T, B, num_classes) readout membrane; (B, T, num_classes) with
          ``batch_first``.

    Attributes:
        positions: one :class:`~spatial_layers.NeuronPositions` per population (inputs,
            each hidden layer, readout; ``delays="spatial"`` only), shared by the layers
            around it.
        hidden: the :class:`~spatial_layers.networks.population.HiddenPopulation` blocks.
        readout: the :class:`~spatial_layers.networks.population.LeakyReadout`.

    The state dict records the arguments (:meth:`get_extra_state`): a state loads
    only into a network built with the same ones (but :data:`LOADABLE_ACROSS`),
    and ``load_state_dict`` names those that differ. Its layers record their own
    state (:class:`~spatial_layers.SpatialDelay`: sigma, kernel kind, weight bits).

    Example:
        >>> net = SpatialSNN(5, 3, [16], max_delay=4)
        >>> net(torch.zeros(10, 2, 5)).shape
        torch.Size([10, 2, 3])
        >>> net.parameter_count()
        ParameterCount(weights=128, coordinates=48, free_delays=0, other=0, total=176)
    """

    def __init__(
        self,
        num_inputs: int,
        num_classes: int,
        hidden_sizes: Sequence[int] = (128,),
        *,
        delays: DelayMode = "spatial",
        dim: int = 2,
        max_delay: int = 10,
        kernel: KernelKind = "gauss",
        velocity: float = 1.0,
        position_init: PositionInit = "uniform",
        position_scale: float | None = None,
        beta: ConstantValue = 0.9,
        neuron: NeuronFamily = "lif",
        learn_beta: bool = False,
        alpha: ConstantValue | None = None,
        reset: Literal["subtract", "zero", "none"] | None = None,
        reset_delay: bool | None = None,
        adaptation_decay: ConstantValue | None = None,
        adaptation_coupling: ConstantValue | None = None,
        adaptation_jump: ConstantValue | None = None,
        adaptation_scale: float | None = None,
        threshold: float = 1.0,
        surrogate_alpha: float = 2.0,
        readout_beta: float | None = None,
        recurrent: bool = False,
        batch_norm: bool = False,
        dropout: float = 0.0,
        bias: bool = False,
        spiking_output: bool = False,
        init_gain: float = 1.0,
        backend: Backend = "auto",
        method: DelayMethod = "auto",
        batch_first: bool = False,
    ) -> None:
        arguments = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__()
        #: The constructor's arguments as plain data, by name: what rebuilds this network.
        self.init_args = {name: plain_value(name, value) for name, value in arguments.items()}
        _check_arguments(self.init_args)
        hidden_sizes = list(hidden_sizes)
        if readout_beta is None:
            readout_beta = beta if isinstance(beta, int | float) else _mean_decay(beta)
        _check_decay("readout_beta", readout_beta)
        if position_scale is None:
            position_scale = default_position_scale(velocity, max_delay, dim)
        self.num_inputs = num_inputs
        self.num_classes = num_classes
        self.hidden_sizes = hidden_sizes
        self.delay_mode: DelayMode = delays
        self.dim = dim if delays == "spatial" else 0
        self.max_delay = max_delay
        self.is_recurrent = recurrent
        self.spiking_output = spiking_output
        #: The hidden neurons' family (``"lif"``, ``"cuba"`` or ``"adlif"``).
        self.neuron_family: str = neuron
        #: The neuron arguments with the family's defaults filled in.
        self.neuron_arguments = family_arguments(self.init_args)
        scalar_beta = float(beta) if isinstance(beta, int | float) else math.nan
        self.params = LeakyParameters(scalar_beta, float(threshold), float(surrogate_alpha))
        self.readout_beta = float(readout_beta)
        self.backend = backend
        self.batch_first = batch_first

        sizes = [num_inputs, *hidden_sizes, num_classes]
        # One position module per population, shared by the layers around it.
        self.positions = nn.ModuleList(
            [NeuronPositions(n, dim, init=position_init, scale=position_scale) for n in sizes]
            if delays == "spatial"
            else []
        )

        def population(index: int) -> NeuronPositions | int:
            return self.positions[index] if delays == "spatial" else sizes[index]

        def delayed(pre: int, post: int) -> SpatialDelay:
            return SpatialDelay(
                population(pre),
                population(post),
                max_delay=max_delay,
                velocity=velocity,
                kernel=kernel,
                delays=delays,
                bias=bias,
                dim=max(dim, 1),
                method=method,
            )

        # Every feed-forward layer, then every recurrent one: the order in which their
        # initial weights are drawn. feedforward[l] feeds population l + 1.
        feedforward = [delayed(i, i + 1) for i in range(len(sizes) - 1)]
        recurrent_layers = [delayed(i, i) for i in range(1, len(sizes) - 1)] if recurrent else []
        if init_gain != 1.0:
            with torch.no_grad():
                for layer in [*feedforward, *recurrent_layers]:
                    layer.weight.mul_(init_gain)
        self.hidden = nn.ModuleList(
            HiddenPopulation(
                feedforward[index],
                self.make_neuron(size),
                recurrent=recurrent_layers[index] if recurrent else None,
                norm=TimeBatchNorm(size) if batch_norm else None,
            )
            for index, size in enumerate(hidden_sizes)
        )
        spiking = None
        if spiking_output:
            # the LIF constants run the default reset only (leaky_sequence): another reset
            # needs the neuron module, as the other families do
            resets = {k: self.neuron_arguments[k] for k in ("reset", "reset_delay")}
            plain = neuron == "lif" and resets == FAMILY_DEFAULTS["lif"]
            spiking = self.params if plain else self.make_neuron(num_classes, beta=None)
        self.readout = LeakyReadout(feedforward[-1], readout_beta, spiking=spiking, backend=backend)
        self.dropout = SpikeDropout(dropout)
        self._hardware_profile: str | None = None
        register_flag(self)

    def make_neuron(self, size: int, *, beta: ConstantValue | None = ...) -> NeuronBase:
        """The neurons of a population of ``size``, as the constructor's arguments say
        (``beta=None``: the readout's decay, for a spiking readout of another family)."""
        args, family = self.init_args, self.neuron_family
        if beta is None:
            beta = self.readout_beta
        elif beta is ...:
            beta = args["beta"]
        learn = bool(args["learn_beta"])
        options = self.neuron_arguments
        common = {
            "threshold": args["threshold"],
            "surrogate_alpha": args["surrogate_alpha"],
            "backend": args["backend"],
        }
        if family == "adlif":
            return AdaptiveLeaky(
                size, beta, options["adaptation_decay"], options["adaptation_coupling"],
                options["adaptation_jump"], scale=options["adaptation_scale"], learn_beta=learn,
                learn_adaptation=learn, **common,
            )  # fmt: skip
        per_neuron = learn or not isinstance(beta, int | float)
        reset = {"reset": options["reset"], "reset_delay": options["reset_delay"]}
        if family == "cuba":
            return Synaptic(
                options["alpha"], beta, size=size, learn_alpha=learn, learn_beta=learn,
                **reset, **common,
            )  # fmt: skip
        alpha = common.pop("surrogate_alpha")
        size = size if per_neuron or reset != FAMILY_DEFAULTS["lif"] else None
        return Leaky(beta, alpha=alpha, size=size, learn_beta=learn, **reset, **common)

    @property
    def layers(self) -> list[SpatialDelay]:
        """The feed-forward delayed layers in order: ``layers[l]`` feeds population l + 1
        (the last one the readout)."""
        return [block.synapses for block in self.hidden] + [self.readout.synapses]

    @property
    def recurrent_layers(self) -> list[SpatialDelay]:
        """The recurrent layers, one per hidden population (empty without recurrence)."""
        return [block.recurrent for block in self.hidden if block.recurrent is not None]

    @property
    def hardware_profile(self) -> str | None:
        """None (float), or the hardware profile the network computes in (settable).

        Setting a profile's name (:data:`spatial_layers.hardware.PROFILES`, e.g.
        ``"loihi2"``) checks that the network fits it and sets every delayed layer to
        the profile's kernel and weights; :meth:`run` then computes what the chip
        computes (:mod:`spatial_layers.hardware`). Setting None leaves the layers'
        settings as they are. Saved in the state dict.
        """
        return self._hardware_profile

    @hardware_profile.setter
    def hardware_profile(self, name: str | None) -> None:
        if name is not None:
            profile = hardware.get_profile(name)
            profile.check(self)
            profile.configure(self)
        self._hardware_profile = name

    def delay_layers(self) -> list[SpatialDelay]:
        """Every SpatialDelay of the network (feed-forward, recurrent, readout)."""
        return delay_layers(self)

    def get_extra_state(self) -> dict:
        """The constructor's arguments (:attr:`init_args`) and the hardware profile."""
        return {**self.init_args, "hardware_profile": self.hardware_profile}

    def set_extra_state(self, state: dict) -> None:
        """Restores the hardware profile (``load_state_dict`` compared the arguments before;
        the layers restore their own kernel and weight settings)."""
        profile = state.get("hardware_profile")
        if profile is not None:
            hardware.get_profile(profile)  # validates the name
        self._hardware_profile = profile

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        saved = state_dict.get(prefix + "_extra_state")
        if isinstance(saved, dict):
            # A state saved before an argument existed was saved with its default.
            saved = {**_DEFAULTS, **saved}
            compared = {k: v for k, v in self.init_args.items() if k not in LOADABLE_ACROSS}
            if refuse_other_settings(
                error_msgs, prefix.rstrip(".") or "SpatialSNN", "a network",
                setting_differences(saved, compared, "this network"),
                f"build it with the saved arguments (state['{prefix}_extra_state'])",
            ):  # fmt: skip
                return
        self._rename_flat_layout(state_dict, prefix)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _rename_flat_layout(self, state_dict: dict, prefix: str) -> None:
        """Moves the keys of a state saved before the blocks (``layers.<l>``, ``norms.<h>``,
        ``recurrent_layers.<h>``) to where this network keeps them, in place."""
        readout = len(self.hidden_sizes)
        for key in [k for k in state_dict if k.startswith(prefix)]:
            local = key[len(prefix) :]
            for pattern, target in _FLAT_LAYOUT:
                match = pattern.match(local)
                if match is None:
                    continue
                if target is None:
                    index = int(match.group(1))
                    target = (
                        "readout.synapses." if index == readout else f"hidden.{index}.synapses."
                    )
                else:
                    target = match.expand(target)
                state_dict[prefix + target + local[match.end() :]] = state_dict.pop(key)
                break

    def parameter_count(self) -> ParameterCount:
        """:func:`spatial_layers.count_parameters` of this network."""
        return count_parameters(self)

    def run(self, x: Tensor, *, record_hidden: bool = True) -> SNNOutput:
        """Full forward pass: readout membrane, output spikes, hidden spikes and rates.

        ``x`` is (T, B, num_inputs), or (B, T, num_inputs) with ``batch_first``, and the
        (T, B, ...) tensors of the output are laid out alike. Every call starts from zero
        membranes and empty delay lines, so no state passes from one batch to the next.
        ``record_hidden=False`` returns no hidden spike trains (their rates still), so
        that each layer's spikes are freed as soon as the next layer has read them: one
        (T, B, H) tensor less per hidden layer at the peak of a training step.
        """
        layout = f"(B, T, {self.num_inputs})" if self.batch_first else f"(T, B, {self.num_inputs})"
        if x.dim() != 3 or x.shape[-1] != self.num_inputs:
            raise ValueError(f"expected {layout} input spikes, got shape {tuple(x.shape)}")
        check_input(self, x, "SpatialSNN")
        if not self.batch_first:
            return self._run(x, record_hidden)
        return swap_time_and_batch(self._run(x.transpose(0, 1), record_hidden))

    def _run(self, x: Tensor, record_hidden: bool) -> SNNOutput:
        """:meth:`run` on a time-major (T, B, num_inputs) ``x``."""
        if self.hardware_profile is not None:
            profile = hardware.get_profile(self.hardware_profile)
            return SNNOutput(*profile.run(self, x, record_hidden))
        hidden_spikes, hidden_rates = [], []
        # The network's input may take any values; every later layer reads spikes
        # (0 or 1, times the dropout scale in training), saved compactly.
        level = None
        # The next layer's input, referenced only here: the layer takes it out, so it
        # is freed once read (the layer saved its own copy), before the LIF runs.
        layer_input = [x]
        del x
        for block in self.hidden:
            spikes = block.fire(layer_input, level)
            hidden_rates.append(spikes.detach().mean())
            if record_hidden:
                hidden_spikes.append(spikes)
            layer_input.append(self.dropout(spikes))
            del spikes  # unless recorded, freed before the next layer runs
            level = self.dropout.scale if self.training else 1.0
        membrane, spikes = self.readout.fire(layer_input, level)
        return SNNOutput(membrane, spikes, hidden_spikes, hidden_rates)

    def forward(self, x: Tensor) -> Tensor:
        """(T, B, num_inputs) spikes -> (T, B, num_classes) readout membrane; (B, T, ...)
        in and out with ``batch_first``."""
        return self.run(x, record_hidden=False).membrane

    def extra_repr(self) -> str:
        return (
            f"num_inputs={self.num_inputs}, num_classes={self.num_classes}, "
            f"hidden_sizes={self.hidden_sizes}, delays={self.delay_mode!r}, dim={self.dim}, "
            f"neuron={self.neuron_family!r}, recurrent={self.is_recurrent}"
        )


#: Every SpatialSNN argument's default (a state saved before an argument existed).
_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(SpatialSNN.__init__).parameters.items()
    if parameter.default is not inspect.Parameter.empty
}


def _mean_decay(pair: Sequence[float]) -> float:
    """The decay whose time constant is the mean of those of a [low, high] decay range."""
    low, high = (float(value) for value in pair)
    return math.exp(-2.0 / (time_constant(low) + time_constant(high)))


def _check_decay(name: str, value: object, *, allow_range: bool = False) -> None:
    """Raises ValueError unless ``value`` is a decay in (0, 1] (or a [low, high] range of
    decays in (0, 1) with ``allow_range``)."""
    if allow_range and isinstance(value, list | tuple):
        if not (
            len(value) == 2 and all(is_number(v) for v in value) and 0 < value[0] <= value[1] < 1
        ):
            raise ValueError(
                f"{name} as a range must be [low, high] with 0 < low <= high < 1, got {value!r}"
            )
        return
    if not (is_number(value) and 0 < value <= 1):
        what = "a number in (0, 1] or a [low, high] range" if allow_range else "in (0, 1]"
        raise ValueError(f"{name} (a decay per step) must be {what}, got {value!r}")


def _check_arguments(arguments: dict) -> None:
    """Raises ValueError naming the first argument of :class:`SpatialSNN` out of its range
    (the layers, neurons and positions check their own arguments again)."""
    counts = {"num_inputs": 1, "num_classes": 1, "max_delay": 0}
    if arguments["delays"] == "spatial":
        counts["dim"] = 1
    for name, smallest in counts.items():
        check_count(name, arguments[name], smallest)
    sizes = arguments["hidden_sizes"]
    counts_ok = isinstance(sizes, list) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes
    )
    if not (sizes and counts_ok):
        raise ValueError(f"hidden_sizes must be a non-empty list of ints >= 1, got {sizes}")
    positive = ["velocity", "threshold", "surrogate_alpha", "init_gain"]
    if arguments["position_scale"] is not None:
        positive.append("position_scale")
    for name in positive:
        check_positive(name, arguments[name])
    family = arguments["neuron"]
    if family not in NEURON_FAMILIES:
        raise ValueError(f"neuron must be one of {NEURON_FAMILIES}, got {family!r}")
    for name in ("learn_beta", *FLAGS):
        check_flag(name, arguments[name])
    _check_decay("beta", arguments["beta"], allow_range=True)
    if arguments["readout_beta"] is not None:
        _check_decay("readout_beta", arguments["readout_beta"])
    for name, families in FAMILY_ARGUMENTS.items():
        if arguments[name] is not None and family not in families:
            raise ValueError(
                f"{name} applies to neuron={families[0]!r}, not neuron={family!r}: leave it unset"
            )
    resolved = family_arguments(arguments)
    if family == "adlif" and (resolved["reset"], resolved["reset_delay"]) != ("zero", False):
        raise ValueError(
            "neuron='adlif' resets to zero at once (SE-adLIF): leave reset and reset_delay unset"
        )
    if resolved["reset"] not in ("subtract", "zero", "none"):
        raise ValueError(f"reset must be 'subtract', 'zero' or 'none', got {resolved['reset']!r}")
    check_flag("reset_delay", resolved["reset_delay"])
    if family == "cuba":
        _check_decay("alpha", resolved["alpha"], allow_range=True)
    if family == "adlif":
        _check_decay("adaptation_decay", resolved["adaptation_decay"], allow_range=True)
        for name in ("adaptation_coupling", "adaptation_jump"):
            value = resolved[name]
            pair = value if isinstance(value, list | tuple) else [value, value]
            if not (len(pair) == 2 and all(is_number(v) for v in pair) and pair[0] <= pair[1]):
                raise ValueError(f"{name} must be a number or a [low, high] range, got {value!r}")
        scale = resolved["adaptation_scale"]
        if not (is_number(scale) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"adaptation_scale must be a positive number, got {scale!r}")
    value = arguments["dropout"]
    if not (is_number(value) and 0.0 <= value < 1.0):
        raise ValueError(f"dropout must be in [0, 1), got {value!r}")
