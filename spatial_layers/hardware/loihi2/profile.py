"""The Loihi 2 profile of a network: what the chip computes, with gradients (:data:`LOIHI2`).

The formats are :mod:`spatial_layers.hardware.loihi2.formats`. With
``net.hardware_profile = "loihi2"`` (the training app's ``HardwareQAT`` callback sets
it late in a run) the network computes what the chip computes, with straight-through
gradients so that it keeps learning:

- every delayed layer uses integer delays (kernel ``"round"``) and 8-bit
  weights on a power-of-two scale per layer (``weight_bits=8``,
  ``weight_scale="power_of_two"``);
- input spikes are rounded to the chip's graded payloads (multiples of
  ``2**-5``, :data:`~spatial_layers.hardware.loihi2.formats.INPUT_FRACTION_BITS`); each layer
  sums its inputs exactly (:func:`exact_delayed`: a dense convolution in
  float64), on the grid of integers times ``2**(s - p)``;
- hidden neurons and the readout run Loihi 2's fixed-point LIF
  (:func:`~spatial_layers.hardware.loihi2.formats.fixed_point_leaky`) in the membrane format
  :func:`network_format` derives from the current weights.

The profile dispatches on the network's neuron family (one profile name, so that
``HardwareQAT(target="loihi2")`` and ``spsnn export --target loihi2`` serve both):

- ``neuron="lif"`` (one ``beta``, reset by subtraction one step late): the microcoded
  LIF above;
- ``neuron="cuba"`` with ``reset="zero", reset_delay=False`` (one ``alpha`` and one
  ``beta``): the hidden populations are Lava's stock LIF process, the CUBA neuron with
  the 12-bit current decay ``du`` and the reset to 0
  (:func:`~spatial_layers.hardware.loihi2.formats.fixed_point_synaptic`), so that an
  exported network maps onto the standard process; the readout stays the leaky
  integrator (Lava's LIF with ``du = 4095``, no threshold);
- ``neuron="adlif"``: refused (no adaptation in Lava's LIF process).

The profile name is part of the network's state dict, and the layers'
settings of theirs, so a checkpoint evaluates and exports as trained.
What the profile cannot run is refused with the fix named
(:func:`profile_problems`): biases, batch norm, dropout, recurrent layers,
delays above 62 steps, input outside [0, 1], per-neuron or learned time constants,
resets the chip's neuron does not run.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from spatial_layers.delay import SpatialDelay
from spatial_layers.functional import delayed_linear
from spatial_layers.hardware.base import HardwareProfile, ProfiledNetwork, ProfileRun
from spatial_layers.hardware.loihi2 import formats as loihi2
from spatial_layers.quantization import quantized_weight


class PopulationFormat(NamedTuple):
    """A neuron population's fixed-point format (spsnn units = integers times ``2**-bits``).

    Attributes:
        bits: fraction bits f of the membrane.
        decay: Loihi's 12-bit ``dv``.
        threshold: the 17-bit threshold mantissa ``vth`` (compared as ``vth << 6``),
            or None for a non-spiking readout.
        current_decay: Loihi's 12-bit ``du`` of Lava's CUBA LIF process (cuba), or None
            (the microcoded LIF, no current state).
    """

    bits: int
    decay: int
    threshold: int | None
    current_decay: int | None = None

    @property
    def alpha(self) -> float | None:
        """The current's decay as applied, ``(4095 - du) / 4096`` (None without a current)."""
        if self.current_decay is None:
            return None
        return loihi2.current_decay_factor(self.current_decay)

    @property
    def beta(self) -> float:
        """The decay as applied, ``(4096 - dv) / 4096``."""
        return loihi2.decay_factor(self.decay)

    @property
    def threshold_level(self) -> float | None:
        """The threshold as applied, in spsnn units (None for a non-spiking readout)."""
        return None if self.threshold is None else loihi2.threshold_level(self.threshold, self.bits)


class LayerFormat(NamedTuple):
    """A delayed layer's weight format: weights are ``mantissa * 2**scale_exponent``.

    Attributes:
        scale_exponent: s (None: every weight is zero).
        weight_exponent: Loihi's ``weight_exp = s + f - 6 - p`` with f the target
            population's fraction bits and p its source's payload fraction bits.
        payload_bits: p, :data:`~spatial_layers.hardware.loihi2.formats.INPUT_FRACTION_BITS` for the
            input layer (graded input spikes), 0 for hidden spikes.
    """

    scale_exponent: int | None
    weight_exponent: int | None
    payload_bits: int

    @property
    def grid_exponent(self) -> int | None:
        """The layer's output is a multiple of ``2**grid_exponent`` (``s - p``)."""
        return None if self.scale_exponent is None else self.scale_exponent - self.payload_bits


class NetworkFormat(NamedTuple):
    """Formats of a whole network: ``populations[l]`` is fed by ``layers[l]`` (last: readout)."""

    populations: list[PopulationFormat]
    layers: list[LayerFormat]


def profile_problems(net: ProfiledNetwork) -> list[str]:
    """What keeps ``net`` from running in the Loihi 2 profile, each with its fix (empty: fits)."""
    problems = []
    if net.max_delay > loihi2.MAX_DELAY:
        problems.append(
            f"max_delay={net.max_delay} steps exceeds Loihi 2's {loihi2.MAX_DELAY}: build the "
            f"network with max_delay <= {loihi2.MAX_DELAY}"
        )
    if any(layer.bias is not None for layer in net.delay_layers()):
        problems.append("the layers have biases: build the network with bias=False")
    if any(block.norm is not None for block in net.hidden):
        problems.append(
            "batch norm would be folded into the weights after their quantisation: build the "
            "network with batch_norm=False"
        )
    if net.dropout.p > 0:
        problems.append(
            f"dropout={net.dropout.p} scales spikes off the chip's 0/1: build with dropout=0"
        )
    if net.is_recurrent:
        problems.append("recurrent layers are not in the profile yet: build with recurrent=False")
    family = getattr(net, "neuron_family", "lif")
    if family == "adlif":
        problems.append(
            "adaptive neurons are not in the profile (Lava's LIF process has no adaptation): "
            "build with neuron='lif' or 'cuba'"
        )
        return problems
    problems += _neuron_problems(net, family)
    try:
        if family == "lif":
            loihi2.decay_code(net.params.beta)
        loihi2.decay_code(net.readout_beta)
    except ValueError as error:
        problems.append(str(error))
    return problems


def _neuron_problems(net: ProfiledNetwork, family: str) -> list[str]:
    """The neurons the chip cannot run: per-neuron or learned constants, other resets."""
    problems = []
    neurons = [block.neuron for block in net.hidden]
    if any(neuron.raw is not None for neuron in neurons):
        problems.append(
            "the time constants are learnable per neuron, the chip holds one per population: "
            "build with learn_beta=False"
        )
        return problems
    if family == "lif":
        if not all(getattr(neuron, "legacy", False) for neuron in neurons):
            problems.append(
                "the profile's LIF (a microcoded neuron) runs one beta and the reset by "
                "subtraction one step late: build with a number beta and reset, reset_delay "
                "unset (or neuron='cuba', reset='zero', reset_delay=False: Lava's LIF process)"
            )
        return problems
    if (neurons[0].reset, neurons[0].reset_delay) != ("zero", False):
        problems.append(
            "Lava's LIF process resets to 0 in the step of the spike: build the cuba "
            "network with reset='zero', reset_delay=False"
        )
    for neuron in neurons:
        beta, alpha = neuron.constant_values()
        if (beta != beta[0]).any() or (alpha != alpha[0]).any():
            problems.append(
                "the decays differ between neurons, the chip holds one du and one dv per "
                "population: build with a number alpha and beta"
            )
            return problems
        try:
            loihi2.decay_code(float(beta[0]))
            loihi2.current_decay_code(float(alpha[0]))
        except ValueError as error:
            problems.append(str(error))
            return problems
    return problems


def configure_layers(net: ProfiledNetwork) -> None:
    """Every delayed layer to integer delays and 8-bit power-of-two weights (the profile's)."""
    for layer in net.delay_layers():
        layer.kernel_kind = "round"
        layer.weight_bits = loihi2.WEIGHT_BITS
        layer.weight_scale = "power_of_two"


def scale_exponent(weight: Tensor) -> int | None:
    """s with the 8-bit weights ``m * 2**s`` of ``weight`` (None when all are zero)."""
    if not bool(weight.detach().ne(0).any()):
        return None
    _, scale = quantized_weight(weight, loihi2.WEIGHT_BITS, power_of_two=True)
    return round(math.log2(float(scale)))


def network_format(net: ProfiledNetwork) -> NetworkFormat:
    """The formats of every population and layer for ``net``'s current weights.

    Raises:
        ValueError: a format does not fit (names the population and the cause).
    """
    exponents = [scale_exponent(layer.effective_weight()) for layer in net.layers]
    populations, layers = [], []
    for index, exponent in enumerate(exponents):
        payload_bits = loihi2.INPUT_FRACTION_BITS if index == 0 else 0
        grid = None if exponent is None else exponent - payload_bits
        readout = index == len(exponents) - 1
        beta = net.readout_beta if readout else net.params.beta
        spiking = net.spiking_output or not readout
        threshold = net.params.threshold if spiking else None
        name = "readout" if readout else f"hidden_{index}"
        current_decay = None
        neuron = net.readout.neuron if readout else net.hidden[index].neuron
        if getattr(neuron, "family", "lif") == "cuba":
            beta, alpha = (float(value[0]) for value in neuron.constant_values())
            current_decay = loihi2.current_decay_code(alpha)
        try:
            bits = loihi2.fraction_bits([] if grid is None else [grid], threshold or 1.0)
            code = None if threshold is None else loihi2.threshold_code(threshold, bits)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from error
        populations.append(PopulationFormat(bits, loihi2.decay_code(beta), code, current_decay))
        weight_exponent = None if grid is None else grid + bits - loihi2.ACTIVATION_SHIFT
        layers.append(LayerFormat(exponent, weight_exponent, payload_bits))
    return NetworkFormat(populations, layers)


def graded_input(x: Tensor) -> Tensor:
    """Input spikes as the chip's graded payloads: multiples of ``2**-5`` (straight-through).

    Raises:
        ValueError: a value outside [0, 1] (a spike amplitude; the message shows some).
    """
    outside = (x < 0) | (x > 1) | torch.isnan(x)
    if bool(outside.any()):
        values = x[outside].flatten()[:3].tolist()
        raise ValueError(
            f"the loihi2 profile sends input spikes as graded payloads of amplitudes in "
            f"[0, 1], got values such as {values}: scale or clip the input to [0, 1]"
        )
    return loihi2.snap(x, -loihi2.INPUT_FRACTION_BITS)


def exact_delayed(layer: SpatialDelay, x: Tensor) -> Tensor:
    """``layer(x)`` as the chip sums it: exactly, in float64 (dense time convolution).

    The profile's weights times payloads are integers times a power of two, so
    float64 products and sums are exact; spectral paths (error proportional to
    the whole signal) and TF32 convolutions on a GPU are not.

    Args:
        layer: a delayed layer in the profile (round kernel, 8-bit weights).
        x: (T, B, C_in) graded input payloads or spikes.

    Returns:
        (T, B, C_out) float64 synaptic input.
    """
    kernel = layer.applied_kernel(min(layer.max_delay + 1, x.shape[0]))
    bias = None if layer.bias is None else layer.bias.double()
    return delayed_linear(x.double(), kernel.double(), bias, method="dense")


def fixed_point_run(net: ProfiledNetwork, x: Tensor, record_hidden: bool) -> ProfileRun:
    """``net.run`` in the profile: readout membrane, output spikes, hidden spikes and rates.

    Args:
        net: a network whose ``hardware_profile`` is set.
        x: (T, B, num_inputs) input spikes in [0, 1] (sent as graded payloads).
        record_hidden: return the hidden spike trains (their rates always).
    """
    LOIHI2.check(net)
    x = graded_input(x)
    formats = network_format(net)
    alpha = net.params.alpha
    hidden_spikes, hidden_rates = [], []
    spikes, membrane = None, None
    for index, layer in enumerate(net.layers):
        population, weights = formats.populations[index], formats.layers[index]
        currents = exact_delayed(layer, x)
        if weights.grid_exponent is not None:
            currents = loihi2.snap(currents, weights.grid_exponent)
        if population.current_decay is None:
            spikes, membrane = loihi2.fixed_point_leaky(
                currents,
                decay=population.decay,
                bits=population.bits,
                threshold=population.threshold,
                alpha=alpha,
            )
        else:
            spikes, membrane = loihi2.fixed_point_synaptic(
                currents,
                current_decay=population.current_decay,
                decay=population.decay,
                bits=population.bits,
                threshold=population.threshold,
                alpha=alpha,
            )
        if index < len(net.layers) - 1:
            hidden_rates.append(spikes.detach().mean())
            if record_hidden:
                hidden_spikes.append(spikes)
            x = spikes
    return ProfileRun(membrane, spikes, hidden_spikes, hidden_rates)


class Loihi2Profile(HardwareProfile):
    """Loihi 2 as a :class:`~spatial_layers.hardware.HardwareProfile` (see the module doc)."""

    name = "loihi2"
    max_delay = loihi2.MAX_DELAY
    weight_bits = loihi2.WEIGHT_BITS

    def problems(self, net: ProfiledNetwork) -> list[str]:
        return profile_problems(net)

    def configure(self, net: ProfiledNetwork) -> None:
        configure_layers(net)

    def weight_scales(self, net: ProfiledNetwork) -> list[float]:
        exponents = [layer.scale_exponent for layer in network_format(net).layers]
        return [1.0 if exponent is None else 2.0**exponent for exponent in exponents]

    def run(self, net: ProfiledNetwork, x: Tensor, record_hidden: bool) -> ProfileRun:
        return fixed_point_run(net, x, record_hidden)


#: The Loihi 2 profile.
LOIHI2 = Loihi2Profile()
