"""The interface between a network and a hardware profile: what a profile reads, what it does.

A profile makes a network compute what a chip computes (its number formats, its
delays, its neuron arithmetic), with straight-through gradients so that training
goes on. A network calls it through :class:`HardwareProfile` only (check, configure,
run) and never knows which chip it is; the profile reads the network through
:class:`ProfiledNetwork`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple, Protocol

from torch import Tensor, nn

from spatial_layers.delay import SpatialDelay
from spatial_layers.neurons import LeakyParameters
from spatial_layers.spike_dropout import SpikeDropout


class ProfiledNetwork(Protocol):
    """What a hardware profile reads of a network (:class:`~spatial_layers.SpatialSNN`
    provides it)."""

    max_delay: int
    hidden: nn.ModuleList
    readout: nn.Module
    neuron_family: str
    dropout: SpikeDropout
    is_recurrent: bool
    params: LeakyParameters
    readout_beta: float
    spiking_output: bool
    hardware_profile: str | None

    @property
    def layers(self) -> list[SpatialDelay]: ...

    def delay_layers(self) -> list[SpatialDelay]: ...


class ProfileRun(NamedTuple):
    """One forward pass in a profile: readout membrane (T, B, K), output spikes (T, B, K)
    or None, one (T, B, H) spike train per hidden layer (empty unless recorded), and one
    0-d mean rate per hidden layer (detached)."""

    membrane: Tensor
    spikes: Tensor | None
    hidden_spikes: list[Tensor]
    hidden_rates: list[Tensor]


class HardwareProfile(ABC):
    """A target's formats and arithmetic, as a network trains and evaluates in them.

    Attributes:
        name: the profile's name (``SpatialSNN.hardware_profile``, recipes, exports).
        max_delay: the largest synaptic delay the target holds, in steps.
        weight_bits: bits per weight on the target.
    """

    name: str
    max_delay: int
    weight_bits: int

    @abstractmethod
    def problems(self, net: ProfiledNetwork) -> list[str]:
        """What keeps ``net`` from running in the profile, each with its fix (empty: fits)."""

    @abstractmethod
    def configure(self, net: ProfiledNetwork) -> None:
        """Sets every delayed layer of ``net`` to the target's delays and weights."""

    @abstractmethod
    def weight_scales(self, net: ProfiledNetwork) -> list[float]:
        """Per feed-forward layer (:attr:`ProfiledNetwork.layers`), the scale its applied
        weights are integer multiples of (1.0 for an all-zero layer)."""

    @abstractmethod
    def run(self, net: ProfiledNetwork, x: Tensor, record_hidden: bool) -> ProfileRun:
        """``net``'s forward pass as the target computes it, for (T, B, C_in) input ``x``."""

    def check(self, net: ProfiledNetwork) -> None:
        """Raises ValueError listing :meth:`problems` when ``net`` cannot run the profile."""
        problems = self.problems(net)
        if problems:
            raise ValueError(
                f"the network does not fit the {self.name} profile: " + "; ".join(problems)
            )
