"""The blocks of a network: a hidden population and the readout, each fed by delayed synapses.

A :class:`HiddenPopulation` is one hidden layer of a spiking network, feed-forward or
recurrent::

    presynaptic spikes --synapses--> [batch norm] --> LIF neurons --> spikes
                                                        ^               |
                                                        +--recurrent<---+   (optional)

and a :class:`LeakyReadout` the output layer: synapses into a leaky membrane (a
non-spiking integrator, or LIF neurons for a spike-count readout).
:class:`~spatial_layers.networks.SpatialSNN` stacks them; they work on their own too.
"""

from __future__ import annotations

from torch import Tensor, nn

from spatial_layers.delay import SpatialDelay
from spatial_layers.networks.norm_leaky import TimeBatchNorm, normalized_spikes
from spatial_layers.neurons import (
    LeakyParameters,
    NeuronBase,
    leaky_integrate,
    leaky_sequence,
)
from spatial_layers.neurons.recurrent import recurrent_leaky, recurrent_neurons
from spatial_layers.ops import Backend
from spatial_layers.spike_dropout import binary_saves


def delayed(layer: SpatialDelay, x: Tensor, level: float | None) -> Tensor:
    """``layer(x)``; where x holds only 0 and ``level``, its saved copy is stored as bools
    (:func:`~spatial_layers.spike_dropout.binary_saves`)."""
    if level is None:
        return layer(x)
    with binary_saves(x, level):
        return layer(x)


def check_recurrent_pair(synapses: SpatialDelay, recurrent: SpatialDelay) -> None:
    """Raises unless ``recurrent`` maps the population ``synapses`` feed onto itself.

    In spatial mode the recurrent layer's ``pre`` and ``post`` must be one
    :class:`~spatial_layers.NeuronPositions` module, the ``post`` of ``synapses``: one set
    of coordinates per population.
    """
    for role, layer in (("synapses", synapses), ("recurrent", recurrent)):
        if not isinstance(layer, SpatialDelay):
            raise TypeError(f"{role} must be a SpatialDelay, got {type(layer).__name__}")
        for flag in ("init_hidden", "batch_first"):
            if getattr(layer, flag):
                raise ValueError(
                    f"the {role} layer was built with {flag}=True; the recurrent population "
                    f"runs whole time-major (T, B, C) sequences: build it with {flag}=False"
                )
    size = synapses.out_features
    if recurrent.in_features != size or recurrent.out_features != size:
        raise ValueError(
            f"recurrent layer must map the population to itself ({size} -> {size}), "
            f"got {recurrent.in_features} -> {recurrent.out_features}"
        )
    if recurrent.delay_mode == "spatial" and not (
        recurrent.pre is recurrent.post
        and (synapses.delay_mode != "spatial" or synapses.post is recurrent.post)
    ):
        raise ValueError(
            "a spatial recurrent layer must use one NeuronPositions module as pre, "
            "post, and as the post of the population's synapses"
        )


class HiddenPopulation(nn.Module):
    r"""A hidden population: delayed synapses in, batch norm, neurons, delayed recurrence.

    .. math::
        I_t = \mathrm{norm}(\mathrm{synapses}(x))_t, \qquad
        S = \mathrm{neurons}\big(I_t + \mathrm{recurrent}(S)_t\big)

    where the recurrent term (when there is one) delivers the population's own spike
    of step :math:`t - 1 - d_{ij}` (:func:`~spatial_layers.neurons.recurrent_neurons`).

    Args:
        synapses: the :class:`~spatial_layers.SpatialDelay` from the presynaptic
            population to this one.
        neuron: the neurons (:class:`~spatial_layers.neurons.Leaky`,
            :class:`~spatial_layers.neurons.Synaptic` or
            :class:`~spatial_layers.neurons.AdaptiveLeaky`: family, constants and backend
            of the loop over time), built for whole sequences (``init_hidden=False``).
        recurrent: an optional ``SpatialDelay`` from this population onto itself; with
            spatial delays its ``pre`` and ``post`` are the ``synapses.post`` module.
        norm: an optional :class:`~spatial_layers.networks.norm_leaky.TimeBatchNorm` over
            the population's channels, between synapses and neurons (as DCLS-delays).

    Shape:
        - Input: (T, B, C_in) presynaptic spikes, time-major.
        - Output: (T, B, C) spikes of the population.

    Example:
        >>> import torch
        >>> from spatial_layers import NeuronPositions
        >>> from spatial_layers.neurons import Leaky
        >>> pos_in, pos_hid = NeuronPositions(4), NeuronPositions(8)
        >>> block = HiddenPopulation(
        ...     SpatialDelay(pos_in, pos_hid, max_delay=3), Leaky(),
        ...     recurrent=SpatialDelay(pos_hid, pos_hid, max_delay=3))
        >>> block(torch.zeros(5, 2, 4)).shape
        torch.Size([5, 2, 8])
    """

    def __init__(
        self,
        synapses: SpatialDelay,
        neuron: NeuronBase,
        *,
        recurrent: SpatialDelay | None = None,
        norm: TimeBatchNorm | None = None,
    ) -> None:
        super().__init__()
        if recurrent is not None:
            check_recurrent_pair(synapses, recurrent)
        if not isinstance(neuron, NeuronBase):
            raise TypeError(
                f"neuron must be a Leaky, Synaptic or AdaptiveLeaky, got {type(neuron).__name__}"
            )
        if neuron.init_hidden:
            raise ValueError(
                "the neuron was built with init_hidden=True; a population runs whole "
                "(T, B, C) sequences: build it with init_hidden=False"
            )
        if neuron.size is not None and neuron.size != synapses.out_features:
            raise ValueError(
                f"the neuron module has {neuron.size} neurons but the population "
                f"{synapses.out_features}"
            )
        if norm is not None and norm.num_features != synapses.out_features:
            raise ValueError(
                f"the batch norm has {norm.num_features} channels but the population "
                f"{synapses.out_features} neurons"
            )
        self.synapses = synapses
        self.recurrent = recurrent
        self.norm = norm
        self.neuron = neuron

    @property
    def size(self) -> int:
        """Neurons in the population."""
        return self.synapses.out_features

    def forward(self, x: Tensor) -> Tensor:
        return self.fire([x])

    def forward_with_membrane(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(spikes, membranes), both (T, B, C): :meth:`forward`'s spikes and the membrane trace."""
        return self._neurons(self.synapses(x))

    def fire(self, inputs: list[Tensor], level: float | None = None) -> Tensor:
        """Spikes for the (T, B, C_in) input that ``inputs`` holds, taken out of it.

        The network's reference to its input goes as soon as the synapses have read it
        (they saved their own copy), and the (T, B, C) currents are freed on return,
        before the next layer runs. ``level``: every element of the input is 0 or
        ``level`` (spikes after dropout), so it is saved as bools; None: any values.
        """
        currents = delayed(self.synapses, inputs.pop(), level)
        if self.norm is not None and self.recurrent is None:
            # Batch norm and LIF fused: the same numbers, one (T, B, C) tensor saved.
            return normalized_spikes(self.norm, self.neuron, currents)
        return self._neurons(currents)[0]

    def _neurons(self, currents: Tensor) -> tuple[Tensor, Tensor]:
        """(spikes, membranes) of the neurons driven by the synapses' (T, B, C) currents."""
        if self.norm is not None:
            currents = self.norm(currents)
        if self.recurrent is None:
            return self.neuron.forward_with_membrane(currents)
        # The recurrent layer reads the population's spikes: its step()'s checks.
        self.recurrent._check(currents.new_zeros(currents.shape[1:]), rank=2)
        kernel, bias = self.recurrent.applied_kernel(), self.recurrent.bias
        if getattr(self.neuron, "legacy", False):
            params, backend = self.neuron.params, self.neuron.backend
            return recurrent_leaky(currents, kernel, bias, params, backend)
        return recurrent_neurons(currents, kernel, bias, self.neuron)

    def extra_repr(self) -> str:
        return f"size={self.size}"


class LeakyReadout(nn.Module):
    r"""The output population: delayed synapses into a leaky membrane.

    .. math:: U_t = \beta U_{t-1} + \mathrm{synapses}(x)_t \;(-\, \theta S_{t-1}
        \text{ when spiking})

    Args:
        synapses: the :class:`~spatial_layers.SpatialDelay` into the readout.
        beta: membrane decay per step, in (0, 1].
        spiking: None for a non-spiking integrator; LIF constants (threshold and
            surrogate slope; ``beta`` is replaced by the readout's) for a readout
            that also spikes (a spike-count readout), or the neuron module that spikes
            (:class:`~spatial_layers.neurons.Synaptic`, ...: its own constants).
        backend: implementation of the loop over time (:mod:`spatial_layers.ops`).

    Shape:
        - Input: (T, B, C_in) presynaptic spikes.
        - Output: (T, B, K) membrane, and (T, B, K) spikes when spiking (else None).
    """

    def __init__(
        self,
        synapses: SpatialDelay,
        beta: float,
        *,
        spiking: LeakyParameters | NeuronBase | None = None,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        if not 0 < beta <= 1:
            raise ValueError(f"beta must be in (0, 1], got {beta}")
        self.synapses = synapses
        self.beta = float(beta)
        #: The spiking neuron module of a spiking readout of another family (else None).
        self.neuron = spiking if isinstance(spiking, NeuronBase) else None
        if self.neuron is not None:
            spiking = None
        self.spiking = None if spiking is None else LeakyParameters(self.beta, *spiking[1:])
        self.backend = backend

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.fire([x])

    def fire(
        self, inputs: list[Tensor], level: float | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """(membrane, spikes or None) for the input ``inputs`` holds, taken out of it
        (as :meth:`HiddenPopulation.fire`)."""
        currents = delayed(self.synapses, inputs.pop(), level)
        if self.neuron is not None:
            spikes, membrane = self.neuron.forward_with_membrane(currents)
            return membrane, spikes
        if self.spiking is not None:
            spikes, membrane = leaky_sequence(currents, self.spiking, backend=self.backend)
            return membrane, spikes
        return leaky_integrate(currents, self.beta, backend=self.backend), None

    def extra_repr(self) -> str:
        spiking = self.spiking is not None or self.neuron is not None
        return f"beta={self.beta}, spiking={spiking}, backend={self.backend!r}"
