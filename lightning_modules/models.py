"""Network builders: stacked spatial-delay layers and LIF populations from plain arguments.

A :class:`SpatialSNN` is the model every recipe trains::

    input spikes --SpatialDelay--> LIF --SpatialDelay--> LIF ... --SpatialDelay--> leaky readout

Each population (the inputs, every hidden layer, the outputs) owns ONE
:class:`~spatial_layers.NeuronPositions`; the layer that feeds a population and
the layer it feeds hold the same module, so moving a neuron moves the delays of
all its synapses, in and out (and of its recurrent synapses in the recurrent
variant). The readout is a non-spiking leaky integrator whose membrane the
classifier turns into logits.

The network is configured in one place, :class:`SpatialSNN`'s signature: a
recipe gives it as the classifier's ``model.net`` (``class_path`` /
``init_args``), the CLI links the data's ``num_inputs`` and ``num_classes``
into it, and the network records its arguments (``net.init_args``) so that a
checkpoint can rebuild it. The option types (``DelayMode``, ``KernelKind``,
``PositionInit``) are those of the layers that check them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from jsonargparse.typing import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from torch import Tensor, nn

from lightning_modules.hardware import (
    check_profile,
    check_profile_name,
    configure_layers,
    fixed_point_run,
)
from spatial_layers import (
    Leaky,
    LeakyParameters,
    NeuronPositions,
    SpatialDelay,
    count_parameters,
    delay_layers,
    leaky_integrate,
    leaky_sequence,
)
from spatial_layers.delay import DelayMode
from spatial_layers.functional import DelayMethod
from spatial_layers.geometry import PositionInit
from spatial_layers.kernels import KernelKind
from spatial_layers.neurons import Backend
from spatial_layers.norm_leaky import TimeBatchNorm, normalized_spikes
from spatial_layers.recurrent import check_recurrent_pair, recurrent_leaky
from spatial_layers.spike_dropout import SpikeDropout, binary_saves


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


def _delayed(layer: SpatialDelay, x: Tensor, level: float | None) -> Tensor:
    """``layer(x)``; where x holds only 0 and ``level``, its saved copy is stored as bools."""
    if level is None:
        return layer(x)
    with binary_saves(x, level):
        return layer(x)


def plain_value(value: object) -> object:
    """A config value as builtin types: bool, int, float, str, None, or a list of them.

    The CLI passes jsonargparse's restricted numbers (``PositiveInt``, ...:
    int and float subclasses), which a ``weights_only`` checkpoint cannot hold.

    >>> from jsonargparse.typing import PositiveInt
    >>> plain_value((PositiveInt(3), 2.5)), type(plain_value(PositiveInt(3)))
    ([3, 2.5], <class 'int'>)
    """
    if value is None or isinstance(value, bool):
        return value
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, list | tuple):
        return [plain_value(item) for item in value]
    raise TypeError(f"not a plain config value: {value!r} ({type(value).__name__})")


#: SpatialSNN arguments a state may be loaded across: they shape only the initial
#: tensors (which the state replaces) or pick an implementation with the same numbers
#: (the LIF backend; the delay algorithm, to float rounding).
LOADABLE_ACROSS = ("position_init", "position_scale", "init_gain", "backend", "method")


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
        beta: LIF membrane decay per step.
        threshold: LIF threshold.
        surrogate_alpha: arctan surrogate slope.
        readout_beta: decay of the readout membrane (default ``beta``).
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
            :func:`~spatial_layers.recurrent.recurrent_leaky`); the same numbers
            on every backend (recurrent layers on Triton: to float rounding).
        method: algorithm of every delayed layer's sequence forward
            (``SpatialDelay(method=...)``): ``"auto"``, ``"dense"``, ``"fft"`` or ``"dft"``.

    Shape:
        - Input: (T, B, num_inputs) spikes, time-major.
        - Output: (T, B, num_classes) readout membrane.

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
        num_inputs: PositiveInt,
        num_classes: PositiveInt,
        hidden_sizes: Sequence[PositiveInt] = (128,),
        *,
        delays: DelayMode = "spatial",
        dim: PositiveInt = 2,
        max_delay: NonNegativeInt = 10,
        kernel: KernelKind = "gauss",
        velocity: PositiveFloat = 1.0,
        position_init: PositionInit = "uniform",
        position_scale: PositiveFloat | None = None,
        beta: PositiveFloat = 0.9,
        threshold: PositiveFloat = 1.0,
        surrogate_alpha: PositiveFloat = 2.0,
        readout_beta: PositiveFloat | None = None,
        recurrent: bool = False,
        batch_norm: bool = False,
        dropout: NonNegativeFloat = 0.0,
        bias: bool = False,
        spiking_output: bool = False,
        init_gain: PositiveFloat = 1.0,
        backend: Backend = "auto",
        method: DelayMethod = "auto",
    ) -> None:
        arguments = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__()
        #: The constructor's arguments as plain data, by name: what rebuilds this network.
        self.init_args = {name: plain_value(value) for name, value in arguments.items()}
        hidden_sizes = list(hidden_sizes)
        if num_inputs < 1 or num_classes < 1:
            raise ValueError(
                f"num_inputs and num_classes must be >= 1, got {num_inputs} and {num_classes}"
            )
        if not hidden_sizes or any(size < 1 for size in hidden_sizes):
            raise ValueError(
                f"hidden_sizes must be a non-empty list of ints >= 1, got {hidden_sizes}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        readout_beta = beta if readout_beta is None else readout_beta
        if not 0 < readout_beta <= 1:
            raise ValueError(f"readout_beta must be in (0, 1], got {readout_beta}")
        if not (math.isfinite(init_gain) and init_gain > 0):
            raise ValueError(f"init_gain must be a positive number, got {init_gain}")
        if delays == "spatial" and dim < 1:
            raise ValueError(f"dim must be >= 1 for spatial delays, got {dim}")
        if position_scale is None:
            position_scale = velocity * max(max_delay, 1) / math.sqrt(max(dim, 1))
        self.num_inputs = num_inputs
        self.num_classes = num_classes
        self.hidden_sizes = hidden_sizes
        self.delay_mode: DelayMode = delays
        self.dim = dim if delays == "spatial" else 0
        self.max_delay = max_delay
        self.is_recurrent = recurrent
        self.spiking_output = spiking_output
        self.params = LeakyParameters(beta, threshold, surrogate_alpha)
        self.readout_beta = float(readout_beta)

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

        # layers[l] feeds population l + 1; the last one feeds the readout.
        self.layers = nn.ModuleList([delayed(i, i + 1) for i in range(len(sizes) - 1)])
        self.recurrent_layers = nn.ModuleList(
            [delayed(i, i) for i in range(1, len(sizes) - 1)] if recurrent else []
        )
        if init_gain != 1.0:
            with torch.no_grad():
                for layer in [*self.layers, *self.recurrent_layers]:
                    layer.weight.mul_(init_gain)
        for feedforward, recurrent_layer in zip(self.layers, self.recurrent_layers, strict=False):
            check_recurrent_pair(feedforward, recurrent_layer)
        self.norms = nn.ModuleList(
            [TimeBatchNorm(size) if batch_norm else nn.Identity() for size in hidden_sizes]
        )
        self.backend = backend
        self.neurons = nn.ModuleList(
            [Leaky(beta, threshold, surrogate_alpha, backend=backend) for _ in hidden_sizes]
        )
        self.dropout = SpikeDropout(dropout)
        self._hardware_profile: str | None = None

    @property
    def hardware_profile(self) -> str | None:
        """None (float), or the hardware profile the network computes in (settable).

        Setting ``"loihi2"`` checks that the network fits (:func:`~lightning_modules.
        hardware.profile_problems`) and sets every delayed layer to the profile's
        kernel and weights; :meth:`run` then computes what the chip computes
        (:mod:`lightning_modules.hardware`). Setting None leaves the layers' settings
        as they are. Saved in the state dict.
        """
        return self._hardware_profile

    @hardware_profile.setter
    def hardware_profile(self, profile: str | None) -> None:
        check_profile_name(profile)
        if profile is not None:
            check_profile(self, profile)
            configure_layers(self)
        self._hardware_profile = profile

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
        check_profile_name(profile)
        self._hardware_profile = profile

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        saved = state_dict.get(prefix + "_extra_state")
        if isinstance(saved, dict):
            differences = [
                f"{name}={saved.get(name)!r} (this network: {value!r})"
                for name, value in self.init_args.items()
                if name not in LOADABLE_ACROSS and saved.get(name) != value
            ]
            if differences:
                error_msgs.append(
                    f"{prefix.rstrip('.') or 'SpatialSNN'}: the state was saved by a network "
                    f"with {', '.join(differences)}; build it with the saved arguments "
                    f"(state['{prefix}_extra_state'])"
                )
                return
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def parameter_count(self):
        """:func:`spatial_layers.count_parameters` of this network."""
        return count_parameters(self)

    def run(self, x: Tensor, *, record_hidden: bool = True) -> SNNOutput:
        """Full forward pass: readout membrane, output spikes, hidden spikes and rates.

        Every call starts from zero membranes and empty delay lines, so no
        state passes from one batch to the next. ``record_hidden=False`` returns
        no hidden spike trains (their rates still), so that each layer's spikes
        are freed as soon as the next layer has read them: one (T, B, H) tensor
        less per hidden layer at the peak of a training step.
        """
        if x.dim() != 3 or x.shape[-1] != self.num_inputs:
            raise ValueError(
                f"expected (T, B, {self.num_inputs}) input spikes, got shape {tuple(x.shape)}"
            )
        if self.hardware_profile is not None:
            return SNNOutput(*fixed_point_run(self, x, record_hidden))
        hidden_spikes, hidden_rates = [], []
        # The network's input may take any values; every later layer reads spikes
        # (0 or 1, times the dropout scale in training), saved compactly.
        level = None
        # The next layer's input, referenced only here: the layer takes it out, so it
        # is freed once read (the layer saved its own copy), before the LIF runs.
        layer_input = [x]
        del x
        for index in range(len(self.hidden_sizes)):
            spikes = self._hidden_spikes(index, layer_input, level)
            hidden_rates.append(spikes.detach().mean())
            if record_hidden:
                hidden_spikes.append(spikes)
            layer_input.append(self.dropout(spikes))
            del spikes  # unless recorded, freed before the next layer runs
            level = self.dropout.scale if self.training else 1.0
        currents = _delayed(self.layers[-1], layer_input.pop(), level)
        spikes = None
        if self.spiking_output:
            out_params = LeakyParameters(self.readout_beta, *self.params[1:])
            spikes, membrane = leaky_sequence(currents, out_params, backend=self.backend)
        else:
            membrane = leaky_integrate(currents, self.readout_beta, backend=self.backend)
        return SNNOutput(membrane, spikes, hidden_spikes, hidden_rates)

    def _hidden_spikes(self, index: int, layer_input: list[Tensor], level: float | None) -> Tensor:
        """Spikes of hidden population ``index`` for the (T, B, C) input that ``layer_input``
        holds, taken out of it (its elements are 0 or ``level``, unless ``level`` is None).

        A function of its own so that the (T, B, C) currents are freed on return,
        before the next layer runs (a loop variable would hold them one layer longer).
        Batch norm and LIF run fused (:func:`~spatial_layers.norm_leaky.normalized_spikes`:
        the same numbers, one (T, B, C) tensor saved instead of two).
        """
        currents = _delayed(self.layers[index], layer_input.pop(), level)
        norm = self.norms[index]
        if self.is_recurrent:
            recurrent = self.recurrent_layers[index]
            kernel, bias = recurrent.applied_kernel(), recurrent.bias
            return recurrent_leaky(norm(currents), kernel, bias, self.params, self.backend)[0]
        if isinstance(norm, TimeBatchNorm):
            return normalized_spikes(norm, self.neurons[index], currents)
        return self.neurons[index](currents)

    def forward(self, x: Tensor) -> Tensor:
        """(T, B, num_inputs) spikes -> (T, B, num_classes) readout membrane."""
        return self.run(x, record_hidden=False).membrane

    def extra_repr(self) -> str:
        return (
            f"num_inputs={self.num_inputs}, num_classes={self.num_classes}, "
            f"hidden_sizes={self.hidden_sizes}, delays={self.delay_mode!r}, dim={self.dim}, "
            f"recurrent={self.is_recurrent}"
        )
