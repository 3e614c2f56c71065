"""A trained :class:`SpatialSNN` as a NIR graph (Neuromorphic Intermediate Representation).

:func:`to_nir` writes the deployed network
(:func:`~spatial_layers.networks.deploy.deployment_network`: eval mode, batch
norm folded, integer delays, optionally k-bit weights);
:func:`from_nir` rebuilds a runnable ``SpatialSNN(delays="free",
kernel="round")`` from such a graph (or its HDF5 file) that gives the same
spikes and membranes step for step.

Graph layout
------------
One node per population and a few nodes per delayed layer::

    input ─┬─> layers_0_delay3 ──> layers_0_linear3 ──┐
           ├─> layers_0_delay1 ──> layers_0_linear1 ──┼──> hidden_0 ──> ... ──> readout ──> output
           └─────────────────────> layers_0_affine0 ──┘
    hidden_0 ──> recurrent_layers_0_delay2 ──> recurrent_layers_0_linear2 ──> hidden_0  (recurrent)

- ``input``: ``nir.Input``; ``hidden_<h>``: ``nir.LIF`` (``nir.IF`` for beta = 1), or
  ``nir.CubaLIF`` for ``neuron="cuba"`` (``tau_syn = dt / (1 - alpha)``, ``w_in = r = 1``;
  adaptive neurons have no NIR form and are refused); ``readout``: ``nir.LI``
  (``nir.I`` for beta = 1), or the hidden neurons' node with a spiking readout;
  ``output``: ``nir.Output`` (the readout membrane, or its
  spikes with a spiking readout).
- Every delayed layer becomes one *branch* per distinct integer delay k among
  its active synapses: ``nir.Delay(delay=full(C_in, k * dt))`` followed by
  ``nir.Linear(weight=W masked to the synapses whose delay is k)`` into the
  postsynaptic population; NIR sums the edges that meet in a node. Branches
  with k = 0 have no Delay node. The layer's bias (or folded batch-norm shift)
  rides on its first branch, which is then an ``nir.Affine``. A layer
  without active synapses keeps one all-zero branch, so that the graph stays
  connected.

Why branches: a layer has at most ``max_delay + 1`` of them, whatever its
size, so the graph stays small (a per-synapse Delay node would need C_out *
C_in nodes), and each branch is a standard Delay + Linear pair that any NIR
backend knows; no custom "delayed linear" node is needed.

Time convention (what the graph means in discrete time, step ``dt``)
-------------------------------------------------------------------
- Edges without a Delay node act within the step: the input spikes of step t
  reach every population in the same step t, through all layers.
- ``nir.Delay`` of ``k * dt`` delivers its input of step t at step t + k.
- Neurons are the forward-Euler discretisation of NIR's continuous-time
  models with step dt, in the convention of NIR's documentation (and of
  Norse's importer): ``r = 1``, ``v_leak = 0`` and ``tau = dt / (1 - beta)``,
  so that ``tau dv/dt = -v + r I`` becomes ``v_t = beta v_{t-1} + (dt / tau) I_t``.
  The input gain ``g = dt / tau = 1 - beta`` (``g = dt`` for beta = 1:
  ``nir.IF`` / ``nir.I``) is carried by the weights: every Linear / Affine node
  into a population holds spsnn's weights (and bias) divided by that
  population's g, in float64, so the graph's dynamics are spsnn's
  ``U_t = beta U_{t-1} + W x_t`` (:func:`~spatial_layers.nir.conventions.input_gain`).
- Reset: NIR's LIF resets *to* ``v_reset`` (0 here) in the step of the spike; spsnn's
  LIF and cuba by default (snnTorch's ``Leaky`` and ``Synaptic``) reset *by
  subtraction* of the threshold, one step late:
  ``U_t = beta U_{t-1} + I_t - theta H(U_{t-1} - theta)``,
  ``S_t = H(U_t - theta)``. Every spiking node states its reset in its metadata
  (``reset``: subtract / zero / none; ``reset_timing``: previous_step / same_step;
  ``dynamics``); :func:`from_nir` reads spiking nodes without it only when told how.
- Recurrent layers (hidden -> hidden): the spike of j at step t reaches i at
  step t + 1 + d_ij (one step of synaptic latency, see
  :func:`~spatial_layers.neurons.recurrent_leaky`), so the cycle is
  ``hidden_h -> Delay((d + 1) dt) -> Linear -> hidden_h``; every cycle passes
  through a Delay of at least one step.

Metadata
--------
- Graph: ``dt`` (s), ``exporter``, ``spsnn_version``, ``max_delay`` (steps),
  ``weight_bits`` (0: float weights), ``delay_rounding``,
  ``time_convention``, ``recurrent_convention``, ``readout`` (the
  classifier's readout mode, when given), ``delay_mode`` (plus ``dim`` and
  ``velocity`` for spatial delays), ``hardware_max_delay``
  and ``clipped_synapses`` (with a delay limit), and ``layers/<name>``: the
  connectivity ``mask`` (uint8, (C_out, C_in)), ``input_gain`` (the target
  population's g: graph weights times g are spsnn's), ``weight_scale`` (k-bit
  weights: spsnn's weights are integers times it), ``source``, ``target``,
  ``recurrent``.
- Population nodes (Input and neuron nodes): ``population``, ``coords``
  ((N, D) float32, spatial networks only); neuron nodes also ``beta``,
  ``dynamics``, and when spiking ``threshold`` and the reset convention.
- Linear / Affine / Delay nodes: ``layer`` and ``delay_steps``; Linear /
  Affine also ``sign`` ((C_in,) int8, +1/-1) under Dale's principle.

Hardware profile (``target="loihi2"``)
-------------------------------------
The graph holds the values the chip uses (the deployed network computes in
the profile, :mod:`spatial_layers.hardware.loihi2.profile`): every Linear weight is an
8-bit mantissa times ``2**scale_exponent`` of its layer, exactly (the float
is that product); delays are whole steps in 0..62; the neurons' ``tau`` and
``v_threshold`` are those of the decay and threshold as the chip stores them.
So that the weights stay the chip's, the input gain rides on the neurons:
``r = tau / dt`` (``1 / dt`` for IF / I) instead of 1, which NIR's Euler step
and :func:`from_nir` read the same way. Metadata adds: graph ``target`` and
``weight_convention``; ``layers/<name>``: ``scale_exponent`` and Loihi's
``weight_exponent``; the Input node: ``loihi2`` (``payload_fraction_bits``:
inputs are graded spikes); neuron nodes: ``loihi2`` (``fraction_bits``, ``decay``,
``threshold_mantissa``, ``threshold_shift``, ``state_bits``, ``decay_bits``
and the integer ``dynamics``), what
:mod:`~spatial_layers.hardware.loihi2.reference` runs.

NIR's HDF5 writer keeps numpy arrays, numbers, strings and nested dicts in
metadata (it cannot store None or lists of strings, so none are written).
"""

from __future__ import annotations

import importlib.metadata
import math
import numbers
from pathlib import Path
from typing import NamedTuple

import nir
import numpy as np

from spatial_layers.hardware.loihi2 import formats as loihi2
from spatial_layers.hardware.loihi2.profile import NetworkFormat, PopulationFormat, network_format
from spatial_layers.kernels import round_delays
from spatial_layers.networks.deploy import (
    INPUT_POPULATION,
    READOUT_POPULATION,
    DelayedConnection,
    check_delay_limit,
    delayed_connections,
    deployment_network,
    population_names,
    profile_delay_limit,
)
from spatial_layers.networks.snn import SpatialSNN
from spatial_layers.neurons.recurrent import RECURRENT_LATENCY
from spatial_layers.nir.conventions import (
    CUBA_DYNAMICS,
    DELAY_ROUNDING,
    LI_DYNAMICS,
    LIF_DYNAMICS,
    RECURRENT_CONVENTION,
    TIME_CONVENTION,
    input_gain,
    membrane_tau,
    reset_timing,
)
from spatial_layers.nir.reader import (
    ParsedNetwork,
    ResetConvention,
    TimeConvention,
    build_network,
    parse_graph,
    read_graph_file,
    scalar,
)

OUTPUT_NODE = "output"
#: The integer dynamics of a cuba population under the loihi2 profile: Lava's LIF process.
LOIHI2_CUBA_DYNAMICS = (
    "u_t = wrap24(sign(u') * ((|u'| * (4096 - (current_decay + 1))) >> 12) + "
    "(sum_j m_ij s_j(t - d_ij)) << (6 + weight_exponent)), u' = u_{t-1}; "
    "v_t = sign(v') * ((|v'| * (4096 - decay)) >> 12) + u_t, v' = v_{t-1} after its reset, "
    "saturating at +-(2**23 - 1); s_t = [v_t > threshold_mantissa << 6]; v_t = 0 where s_t "
    "(Lava's LIF process, PyLifModelBitAcc: du = current_decay, dv = decay, ds_offset 1)"
)
#: What a hardware profile's graph holds in its Linear nodes (graph metadata).
PROFILE_WEIGHTS = (
    "weights are the chip's: mantissa * 2**scale_exponent of the layer, in units of the "
    "threshold's scale; neuron r = tau / dt (r = 1 / dt for IF / I) carries the input gain"
)
#: How input values reach the chip under the loihi2 profile (Input node metadata).
PROFILE_INPUT = (
    "graded spikes: an input value x in [0, 1] is sent as the integer payload "
    "round(x * 2**payload_fraction_bits) (half to even)"
)
#: The integer dynamics of a population under the loihi2 profile (node metadata).
LOIHI2_DYNAMICS = (
    "v_t = sign(v') * ((|v'| * (4096 - decay)) >> 12) + (sum_j m_ij s_j(t - d_ij)) << "
    "(6 + weight_exponent) - (threshold_mantissa << 6) * [v_{t-1} > threshold_mantissa << 6], "
    "v' = v_{t-1}, saturating at +-(2**23 - 1); s_t = [v_t > threshold_mantissa << 6]; "
    "spsnn's membrane U = v * 2**-fraction_bits; s_j is a spike (0/1) or the input's payload"
)


class ExportedLayer(NamedTuple):
    """A delayed layer as written to the graph (numpy, on the CPU).

    Attributes:
        connection: its name and populations (the layer itself not used).
        weight: (C_out, C_in) float weights as applied, zero where masked.
        delays: (C_out, C_in) int64 delays of the graph's Delay nodes, in
            steps (recurrent layers: d + 1).
        mask: (C_out, C_in) bool, active synapses.
        bias: (C_out,) or None.
        sign: (C_in,) int8 Dale signs, or None.
        scale: weight scale of k-bit weights, or None.
    """

    connection: DelayedConnection
    weight: np.ndarray
    delays: np.ndarray
    mask: np.ndarray
    bias: np.ndarray | None
    sign: np.ndarray | None
    scale: float | None


def delay_branches(
    weight: np.ndarray, delays: np.ndarray, mask: np.ndarray, *, empty_delay: int = 0
) -> list[tuple[int, np.ndarray]]:
    """Splits a delayed layer into one (delay, weight) branch per distinct delay.

    Args:
        weight: (C_out, C_in) weights.
        delays: (C_out, C_in) integer delays in steps.
        mask: (C_out, C_in) bool, active synapses (only these are split).
        empty_delay: delay of the single all-zero branch returned when no
            synapse is active.

    Returns:
        ``[(k, W_k)]`` sorted by k, with ``W_k = where(mask & (delays == k), W, 0)``;
        the W_k sum to ``W * mask``.

    Example:
        >>> w = np.array([[1.0, 2.0], [3.0, 4.0]])
        >>> d = np.array([[0, 2], [2, 2]])
        >>> [(k, b.tolist()) for k, b in delay_branches(w, d, np.ones((2, 2), bool))]
        [(0, [[1.0, 0.0], [0.0, 0.0]]), (2, [[0.0, 2.0], [3.0, 4.0]])]
    """
    present = np.unique(delays[mask])
    if present.size == 0:
        return [(empty_delay, np.zeros_like(weight))]
    return [
        (int(k), np.where(mask & (delays == k), weight, 0).astype(weight.dtype)) for k in present
    ]


def exported_layer(connection: DelayedConnection, scale: float | None = None) -> ExportedLayer:
    """Reads one deployed layer's weights, integer delays, mask, bias and signs."""
    layer = connection.layer
    delays = round_delays(layer.delays().detach()).long().cpu().numpy()  # as the round kernel
    if connection.recurrent:
        delays = delays + RECURRENT_LATENCY
    mask = layer.mask.detach().cpu().numpy().astype(bool)
    weight = layer.effective_weight().detach().cpu().numpy()
    bias = None if layer.bias is None else layer.bias.detach().cpu().numpy()
    sign = None if layer.sign is None else layer.sign.detach().cpu().numpy().astype(np.int8)
    return ExportedLayer(connection, weight, delays, mask, bias, sign, scale)


def clip_delays_to(layers: list[ExportedLayer], max_delay: int | None) -> list[ExportedLayer]:
    """The layers with their graph delays clamped to ``max_delay`` (None: unchanged).

    Whether clamping is allowed is :func:`~spatial_layers.networks.deploy.check_delay_limit`'s
    call, made before.
    """
    if max_delay is None:
        return layers
    return [layer._replace(delays=np.minimum(layer.delays, max_delay)) for layer in layers]


def to_nir(
    net: SpatialSNN,
    *,
    dt: float = 1e-3,
    weight_bits: int | None = None,
    max_delay: int | None = None,
    clip_delays: bool = False,
    readout: str | None = None,
    target: str | None = None,
) -> nir.NIRGraph:
    """Exports ``net`` as a NIR graph with integer delays (layout: see the module doc).

    Args:
        net: the network (not changed; exported in eval mode, see
            :func:`~spatial_layers.networks.deploy.deployment_network`).
        dt: duration of one time step, in seconds (NIR's time unit).
        weight_bits: quantise weights symmetrically per layer to this many
            bits (>= 2); None keeps float weights.
        max_delay: hardware limit on a Delay node, in steps (recurrent
            synapses count d + 1); None: no limit.
        clip_delays: clamp delays above ``max_delay`` instead of raising
            (the count goes into the metadata as ``clipped_synapses``).
        readout: the classifier's readout mode, recorded in the metadata.
        target: a hardware profile, ``"loihi2"``: the graph holds the values the
            chip uses (see "Hardware profile" in the module doc); ``weight_bits``
            must then be None or 8 and ``max_delay`` at most 62 (its default).

    Returns:
        The graph; ``nir.write(path, graph)`` stores it as HDF5.
    """
    if isinstance(dt, bool) or not isinstance(dt, numbers.Real) or not 0 < dt < math.inf:
        raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
    if max_delay is not None and (
        isinstance(max_delay, bool) or not isinstance(max_delay, int) or max_delay < 0
    ):
        raise ValueError(f"max_delay must be an int >= 0 (steps) or None, got {max_delay!r}")
    dt = float(dt)
    formats = None
    if target is not None:
        max_delay = profile_delay_limit(target, max_delay)
    # Counted (or refused) on the network as trained; the deployed copy clips.
    clipped = check_delay_limit(net, max_delay, clip_delays)
    if target is not None:
        deployed, scales = deployment_network(
            net, weight_bits=weight_bits, target=target, max_delay=max_delay, clip_delays=True
        )
        formats = network_format(deployed)
        weight_bits = loihi2.WEIGHT_BITS
    else:
        deployed, scales = deployment_network(net, weight_bits=weight_bits)
    layers = [exported_layer(c, scales.get(c.name)) for c in delayed_connections(deployed)]
    layers = clip_delays_to(layers, max_delay)
    names = population_names(deployed)

    nodes: dict[str, nir.NIRNode] = {
        INPUT_POPULATION: nir.Input(
            input_type=np.array([deployed.num_inputs]),
            metadata=_population_metadata(deployed, 0, names),
        )
    }
    if formats is not None:
        nodes[INPUT_POPULATION].metadata[target] = {
            "payload_fraction_bits": loihi2.INPUT_FRACTION_BITS,
            "payload": PROFILE_INPUT,
        }
    neurons = _neuron_constants(deployed, formats)
    for index, (size, population) in enumerate(
        zip([*deployed.hidden_sizes, deployed.num_classes], neurons, strict=True), start=1
    ):
        metadata = _population_metadata(deployed, index, names)
        if formats is not None:
            metadata[target] = _population_format(formats.populations[index - 1])
        # Under a profile the weights stay the chip's values: r carries the gain.
        r = 1.0 if formats is None else 1.0 / population_gain(population, dt)
        nodes[names[index]] = _neuron_node(size, population, dt, metadata, r)
    # What the graph's weights into each population are multiplied by to be spsnn's.
    gains = {
        name: population_gain(population, dt) if formats is None else 1.0
        for name, population in zip(names[1:], neurons, strict=True)
    }
    edges: list[tuple[str, str]] = []
    for layer in layers:
        _add_branches(nodes, edges, layer, names, dt, gains[names[layer.connection.target]])
    nodes[OUTPUT_NODE] = nir.Output(output_type=np.array([deployed.num_classes]))
    edges.append((READOUT_POPULATION, OUTPUT_NODE))
    metadata = _graph_metadata(deployed, layers, names, gains, dt, weight_bits, max_delay, clipped)
    if formats is not None:
        metadata |= {"target": target, "weight_convention": PROFILE_WEIGHTS}
        for layer, weights in zip(layers, formats.layers, strict=True):
            record = metadata["layers"][layer.connection.name]
            if weights.scale_exponent is not None:
                record["scale_exponent"] = int(weights.scale_exponent)
                record["weight_exponent"] = int(weights.weight_exponent)
    if readout is not None:
        metadata["readout"] = str(readout)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_nir(net: SpatialSNN, path: str | Path, **kwargs) -> nir.NIRGraph:
    """:func:`to_nir` (keyword arguments passed on), written to ``path`` with ``nir.write``."""
    graph = to_nir(net, **kwargs)
    nir.write(Path(path), graph)
    return graph


def parse_nir(
    graph: nir.NIRGraph | str | Path,
    *,
    dt: float | None = None,
    reset: ResetConvention | None = None,
    convention: TimeConvention = "nir",
) -> ParsedNetwork:
    """Validates a NIR graph (or its file) and describes it as a SpatialSNN sees it.

    The :class:`~spatial_layers.nir.reader.ParsedNetwork` holds
    what :func:`from_nir` builds from and what the network has no place for:
    population names and coordinates (``populations[i].coords``, spatial
    exports only) and the graph's metadata.

    Args:
        graph: a ``nir.NIRGraph``, or the path of a file ``nir.write`` wrote
            (spsnn's, snnTorch's ``export_to_nir``, Norse's ``to_nir``, or
            any graph of the supported node types).
        dt: step in seconds, for graphs without ``dt`` in their metadata.
        reset: how spiking nodes whose metadata states no reset reset:
            ``"subtract"``, the threshold one step late, as snnTorch's ``Leaky`` and
            ``Synaptic`` (whose exporter does not record it); ``"zero"``, to
            ``v_reset = 0`` in the step of the spike (NIR's own semantics, Norse's
            cells); None refuses them.
        convention: ``"nir"`` (time constants in seconds) or ``"norse"``: the graph was
            written by Norse's ``to_nir``, whose time constants are ``dt / tau_inv``
            (:func:`~spatial_layers.nir.conventions.true_tau`), whose ``LIFCell``
            (``CubaLIF``) current takes its input with gain ``w_in``, and whose cells
            reset to ``v_reset`` at once (``reset`` defaults to ``"zero"``).

    Raises:
        ValueError: the file is not a NIR graph, or the graph is not one a
            SpatialSNN can run (the message names the node and the problem).
    """
    if isinstance(graph, str | Path):
        graph = read_graph_file(Path(graph))
    elif not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"expected a nir.NIRGraph or a path, got {type(graph).__name__}")
    return parse_graph(graph, dt, reset, convention)


def from_nir(
    graph: nir.NIRGraph | str | Path,
    *,
    dt: float | None = None,
    reset: ResetConvention | None = None,
    convention: TimeConvention = "nir",
) -> SpatialSNN:
    """Rebuilds a runnable ``SpatialSNN(delays="free", kernel="round")`` from a NIR graph.

    The network's free delays are the graph's integer delays (recurrent ones
    minus the step of latency), its weights the graph's weights, its masks
    the ``mask`` metadata of each layer (else the non-zero pattern), its Dale
    signs the ``sign`` metadata. It runs in eval mode and gives the same
    numbers as the deployed original (see the module doc for the
    conventions). Coordinates and population names: :func:`parse_nir`.
    Arguments and errors as :func:`parse_nir`.
    """
    return build_network(parse_nir(graph, dt=dt, reset=reset, convention=convention))


def graph_summary(graph: nir.NIRGraph) -> dict[str, int | float]:
    """Counts of a graph's nodes, edges, branches (Linear / Affine nodes) and Delay nodes.

    ``min_delay`` / ``max_delay`` range over the branches, in steps of the
    graph's ``dt`` (a branch without a Delay node has delay 0).
    """
    dt = scalar("the graph's metadata 'dt'", graph.metadata.get("dt", 1.0))
    sources = {target: source for source, target in graph.edges}
    steps = []
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Linear | nir.Affine):
            before = graph.nodes.get(sources.get(name, ""))
            delay = float(np.max(before.delay)) if isinstance(before, nir.Delay) else 0.0
            steps.append(round(delay / dt))
    return {
        "nodes": len(graph.nodes),
        "edges": len(graph.edges),
        "branches": len(steps),
        "delay_nodes": sum(isinstance(n, nir.Delay) for n in graph.nodes.values()),
        "min_delay": min(steps, default=0),
        "max_delay": max(steps, default=0),
        "dt": dt,
    }


# ---------------------------------------------------------------- helpers
class PopulationNeurons(NamedTuple):
    """A population's neurons as the graph holds them.

    Attributes:
        beta: membrane decay per step, one number or (C,) per neuron.
        threshold: the threshold, None for a non-spiking readout.
        family: ``"lif"`` or ``"cuba"``.
        alpha: the current's decay (cuba), one number or (C,); None for lif.
        reset, reset_delay: the reset mechanism and its timing.
    """

    beta: float | np.ndarray
    threshold: float | None
    family: str = "lif"
    alpha: float | np.ndarray | None = None
    reset: str = "subtract"
    reset_delay: bool = True


def population_gain(population: PopulationNeurons, dt: float) -> float | np.ndarray:
    """What NIR's Euler step multiplies the population's input by, with ``r = w_in = 1``:
    ``1 - beta`` (``dt`` for beta = 1), times ``1 - alpha`` for cuba (one number, or (C,))."""
    if isinstance(population.beta, np.ndarray) or isinstance(population.alpha, np.ndarray):
        beta = np.asarray(population.beta, np.float64)
        gain = np.where(beta == 1, dt, 1 - beta)
        if population.alpha is not None:
            gain = gain * (1 - np.asarray(population.alpha, np.float64))
        return _compact(gain)
    gain = input_gain(population.beta, dt)
    return gain if population.alpha is None else gain * (1 - population.alpha)


def _compact(values: np.ndarray) -> float | np.ndarray:
    """One number when every neuron holds the same value, else the (C,) array."""
    values = np.asarray(values, np.float64)
    return float(values.flat[0]) if values.size and (values == values.flat[0]).all() else values


def _neuron_constants(net: SpatialSNN, formats: NetworkFormat | None) -> list[PopulationNeurons]:
    """The neurons of every population after the inputs, as the graph holds them.

    Under a hardware profile: the decay and threshold the chip applies.

    Raises:
        ValueError: adaptive (adlif) neurons, which no NIR node or composition represents.
    """
    if net.neuron_family == "adlif":
        raise ValueError(
            "adaptive LIF neurons (neuron='adlif') have no NIR form: NIR has no adaptive "
            "neuron node, and its LIF and CubaLIF nodes output only spikes, so SE-adLIF's "
            "adaptation current, coupled to the membrane by a (w += (1 - rho) q a u), cannot "
            "be composed from NIR nodes; export a 'lif' or 'cuba' network"
        )
    if formats is not None:
        return [_format_neurons(population) for population in formats.populations]
    populations = [_module_neurons(block.neuron) for block in net.hidden]
    readout = net.readout
    if readout.neuron is not None:
        populations.append(_module_neurons(readout.neuron))
    else:
        threshold = None if readout.spiking is None else readout.spiking.threshold
        populations.append(PopulationNeurons(net.readout_beta, threshold))
    return populations


def _format_neurons(population: PopulationFormat) -> PopulationNeurons:
    """A population in a hardware profile: the decays and threshold the chip applies
    (cuba: Lava's LIF process, which resets to 0 in the step of the spike)."""
    if population.current_decay is None:
        return PopulationNeurons(population.beta, population.threshold_level)
    return PopulationNeurons(
        population.beta, population.threshold_level, "cuba", population.alpha, "zero", False
    )


def _module_neurons(neuron) -> PopulationNeurons:
    """The :class:`PopulationNeurons` of a spsnn neuron module (Leaky or Synaptic)."""
    if getattr(neuron, "legacy", False):
        return PopulationNeurons(neuron.params.beta, neuron.params.threshold)
    values = neuron.constant_values().detach().double().cpu().numpy()
    beta = _compact(values[0])
    alpha = _compact(values[1]) if neuron.family == "cuba" else None
    if neuron.family == "cuba" and (values[:2] == 1).any():
        raise ValueError("a cuba neuron with a decay of 1 (no leak) has no NIR CubaLIF form")
    return PopulationNeurons(
        beta, neuron.threshold, neuron.family, alpha, neuron.reset, neuron.reset_delay
    )


def _population_format(population: PopulationFormat) -> dict:
    """A population's fixed-point format as node metadata (integers, as the chip holds them)."""
    record = {
        "fraction_bits": int(population.bits),
        "decay": int(population.decay),
        "decay_bits": loihi2.DECAY_BITS,
        "state_bits": loihi2.STATE_BITS,
        "threshold_shift": loihi2.ACTIVATION_SHIFT,
        "dynamics": LOIHI2_DYNAMICS,
    }
    if population.threshold is not None:
        record["threshold_mantissa"] = int(population.threshold)
    if population.current_decay is not None:
        record["current_decay"] = int(population.current_decay)
        record["dynamics"] = LOIHI2_CUBA_DYNAMICS
        record["process"] = "lava.proc.lif.process.LIF (PyLifModelBitAcc)"
    return record


def _neuron_node(
    size: int, population: PopulationNeurons, dt: float, metadata: dict, r: float = 1.0
) -> nir.NIRNode:
    """LIF / IF / CubaLIF (spiking) or LI / I node of ``size`` neurons, input gain ``r``."""
    zeros = np.zeros(size, dtype=np.float64)
    ones = np.full(size, float(r))
    beta, threshold = population.beta, population.threshold
    beta_array = np.broadcast_to(np.asarray(beta, np.float64), (size,))
    metadata = {**metadata, "beta": beta if isinstance(beta, float) else np.asarray(beta)}
    if threshold is not None:
        metadata.update(
            threshold=float(threshold),
            reset=population.reset,
            reset_timing=reset_timing(population.reset_delay),
            dynamics=LIF_DYNAMICS,
        )
        v_threshold = np.full(size, float(threshold))
        if population.family == "cuba":
            alpha = population.alpha
            alpha_array = np.broadcast_to(np.asarray(alpha, np.float64), (size,))
            metadata.update(
                alpha=alpha if isinstance(alpha, float) else np.asarray(alpha),
                dynamics=CUBA_DYNAMICS,
            )
            return nir.CubaLIF(
                tau_syn=dt / (1 - alpha_array),
                tau_mem=dt / (1 - beta_array),
                r=ones,
                v_leak=zeros,
                v_threshold=v_threshold,
                v_reset=zeros.copy(),
                w_in=np.ones(size),
                metadata=metadata,
            )
        if (beta_array == 1).all():
            return nir.IF(r=ones, v_threshold=v_threshold, v_reset=zeros, metadata=metadata)
        return nir.LIF(
            tau=np.array([membrane_tau(b, dt) for b in beta_array]),
            r=ones,
            v_leak=zeros,
            v_threshold=v_threshold,
            v_reset=zeros.copy(),
            metadata=metadata,
        )
    metadata["dynamics"] = LI_DYNAMICS
    if (beta_array == 1).all():
        return nir.I(r=ones, metadata=metadata)
    return nir.LI(
        tau=np.array([membrane_tau(b, dt) for b in beta_array]),
        r=ones,
        v_leak=zeros,
        metadata=metadata,
    )


def _population_metadata(net: SpatialSNN, index: int, names: list[str]) -> dict:
    metadata: dict = {"population": names[index]}
    if net.delay_mode == "spatial":
        coords = net.positions[index].coords.detach().cpu().numpy().astype(np.float32)
        metadata["coords"] = coords
    return metadata


def _add_branches(
    nodes: dict[str, nir.NIRNode],
    edges: list[tuple[str, str]],
    layer: ExportedLayer,
    names: list[str],
    dt: float,
    gain: float | np.ndarray,
) -> None:
    """One Delay + Linear branch per distinct delay; weights divided by the target's ``gain``
    (one number, or (C_out,) per target neuron)."""
    connection = layer.connection
    source, target = names[connection.source], names[connection.target]
    empty_delay = RECURRENT_LATENCY if connection.recurrent else 0
    branches = delay_branches(layer.weight, layer.delays, layer.mask, empty_delay=empty_delay)
    row_gain = gain[:, None] if isinstance(gain, np.ndarray) else gain
    for index, (steps, spsnn_weight) in enumerate(branches):
        weight = spsnn_weight.astype(np.float64) / row_gain
        metadata: dict = {"layer": connection.name, "delay_steps": steps}
        if layer.sign is not None:
            metadata["sign"] = layer.sign
        if index == 0 and layer.bias is not None:
            name = f"{connection.name}_affine{steps}"
            bias = layer.bias.astype(np.float64) / gain
            nodes[name] = nir.Affine(weight=weight, bias=bias, metadata=metadata)
        else:
            name = f"{connection.name}_linear{steps}"
            nodes[name] = nir.Linear(weight=weight, metadata=metadata)
        if steps > 0:
            delay_name = f"{connection.name}_delay{steps}"
            nodes[delay_name] = nir.Delay(
                delay=np.full(weight.shape[1], steps * dt),
                metadata={"layer": connection.name, "delay_steps": steps},
            )
            edges += [(source, delay_name), (delay_name, name)]
        else:
            edges.append((source, name))
        edges.append((name, target))


def _graph_metadata(
    net: SpatialSNN,
    layers: list[ExportedLayer],
    names: list[str],
    gains: dict[str, float | np.ndarray],
    dt: float,
    weight_bits: int | None,
    max_delay: int | None,
    clipped: int,
) -> dict:
    metadata: dict = {
        "exporter": "spsnn",
        "spsnn_version": _spsnn_version(),
        "dt": dt,
        "max_delay": int(net.max_delay),
        "weight_bits": 0 if weight_bits is None else int(weight_bits),
        "delay_rounding": DELAY_ROUNDING,
        "time_convention": TIME_CONVENTION,
        "recurrent_convention": RECURRENT_CONVENTION,
        "neuron": net.neuron_family,
        "reset": net.neuron_arguments["reset"],
        "reset_timing": reset_timing(net.neuron_arguments["reset_delay"]),
        "delay_mode": net.delay_mode,
        "surrogate_alpha": float(net.params.alpha),
        "layers": {},
    }
    if net.delay_mode == "spatial":
        metadata["dim"] = int(net.dim)
        metadata["velocity"] = float(net.layers[0].velocity)
    if max_delay is not None:
        metadata["hardware_max_delay"] = int(max_delay)
        metadata["clipped_synapses"] = int(clipped)
    for layer in layers:
        connection = layer.connection
        record: dict = {
            "source": names[connection.source],
            "target": names[connection.target],
            "recurrent": bool(connection.recurrent),
            "mask": layer.mask.astype(np.uint8),
            "input_gain": _metadata_number(gains[names[connection.target]]),
        }
        if layer.scale is not None:
            record["weight_scale"] = float(layer.scale)
        metadata["layers"][connection.name] = record
    return metadata


def _metadata_number(value: float | np.ndarray) -> float | np.ndarray:
    return value if isinstance(value, np.ndarray) else float(value)


def _spsnn_version() -> str:
    try:
        return importlib.metadata.version("spsnn")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
