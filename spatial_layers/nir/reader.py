"""Reading a NIR graph back into a :class:`SpatialSNN`: validation, then assembly.

:func:`parse_graph` checks that a graph has the shape
:mod:`~spatial_layers.nir.graph` describes (and that a SpatialSNN can
run it exactly) and describes it as a :class:`ParsedNetwork`: its populations
(names, sizes, neuron constants, coordinates) and connections (weights,
delays, masks, signs); :func:`build_network` turns that into a
``SpatialSNN(delays="free", kernel="round")``. What the network has no place
for (population names, coordinates, the graph's metadata) stays in the
:class:`ParsedNetwork`. Every problem is a ValueError that names the node and
what is wrong with it.

Accepted graphs are more general than what :func:`to_nir` writes, so that
graphs of snnTorch's ``export_to_nir`` and Norse's ``to_nir`` and standard NIR
read too: a Delay node may hold one delay per presynaptic channel (the
synapse j -> i then has delay ``delay[j]``), several branches may share a
delay, a branch may have no metadata; Input / Output shapes ``[C]`` or
``[1, C]``; neuron parameters per neuron (equal) or scalar (the population
size then comes from the incoming weights); any input gain ``g = r * dt /
tau`` (``r * dt`` for IF / I), folded into the incoming weights and biases
(``g`` within :data:`GAIN_TOLERANCE` of 1 is 1); ``dt`` as an argument where
the graph has none. What a SpatialSNN cannot represent is refused, naming the
node: node types other than Input, Output, Delay, Linear, Affine, LIF, IF,
CubaLIF, LI, I; populations that are not a chain input -> hidden ... -> readout (plus
hidden -> hidden recurrence); a synapse with non-zero weights at two delays;
per-neuron different time constants or thresholds; ``v_leak != 0``,
``v_reset != 0``. ``CubaLIF`` nodes become ``neuron="cuba"`` populations. Spiking nodes
reset as their metadata states (``reset`` subtract / zero / none, ``reset_timing``
previous_step / same_step); a graph whose spiking nodes do not state it (snnTorch's and
Norse's exporters do not) is read only when the caller says how: ``reset="subtract"``
(the threshold one step late: snnTorch's ``Leaky`` and ``Synaptic``) or ``reset="zero"``
(to ``v_reset = 0`` in the step of the spike: NIR's own semantics, Norse's cells).
Norse's exporter writes its time constants as ``dt / tau_inv``: ``convention="norse"``
reads them so (and its ``LIFCell``'s current, which takes its input with gain ``w_in``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

import nir
import numpy as np
import torch

from spatial_layers.delay import SpatialDelay
from spatial_layers.networks.snn import SpatialSNN
from spatial_layers.neurons.recurrent import RECURRENT_LATENCY
from spatial_layers.nir.conventions import (
    RESET_CONVENTION,
    RESET_TIMINGS,
    RESETS,
    TIME_CONVENTIONS,
    beta_from_tau,
    true_tau,
)

SUPPORTED_NODES = (
    nir.Input,
    nir.Output,
    nir.Delay,
    nir.Linear,
    nir.Affine,
    nir.LIF,
    nir.IF,
    nir.CubaLIF,
    nir.LI,
    nir.I,
)
SPIKING_NODES = (nir.LIF, nir.IF, nir.CubaLIF)
NEURON_NODES = (nir.LIF, nir.IF, nir.CubaLIF, nir.LI, nir.I)
POPULATION_NODES = (nir.Input, *NEURON_NODES)
BRANCH_NODES = (nir.Linear, nir.Affine)
#: An input gain r * dt / tau within this of 1 is 1: float32 rounding of r and tau
#: (snnTorch writes r = tau / dt), which must not change the weights.
GAIN_TOLERANCE = 1e-6
#: Neuron parameters a node may give as a scalar or one value per neuron.
NEURON_PARAMETERS = ("tau", "tau_syn", "tau_mem", "r", "w_in", "v_leak", "v_threshold", "v_reset")
#: Tolerance, in steps, on a Delay holding a whole number of steps.
STEP_TOLERANCE = 1e-6
#: A metadata ``beta`` within this of 1 - dt / tau is taken as the exact decay.
BETA_TOLERANCE = 1e-9


#: How the caller says spiking nodes reset when their metadata does not: ``"subtract"``,
#: the threshold one step late (snnTorch's ``Leaky`` and ``Synaptic``); ``"zero"``, to 0 in
#: the step of the spike (NIR's own semantics, Norse's cells; snnTorch's
#: ``reset_mechanism="zero"``, which spikes alike); ``"none"``, no reset (snnTorch's
#: ``reset_mechanism="none"``).
ResetConvention = Literal["subtract", "zero", "none"]
#: The (reset, reset_delay) each caller's convention stands for.
CALLER_RESETS = {"subtract": ("subtract", True), "zero": ("zero", False), "none": ("none", True)}
TimeConvention = Literal["nir", "norse"]


def _fail(message: str) -> ValueError:
    return ValueError(f"cannot import the NIR graph: {message}")


# ---------------------------------------------------------- values
# Every number the reader takes from a graph (node parameters, weights, delays, metadata)
# goes through :func:`numbers`: a bool, a complex number, text or a Python object is
# refused, naming where it sits, rather than read as something else (True as 1, a complex
# weight without its imaginary part, "0.9" as 0.9).
_KINDS = {"b": "booleans", "c": "complex numbers", "U": "text", "S": "bytes", "O": "objects"}


def numbers(where: str, value, shapes: tuple[tuple[int, ...], ...] | None = None) -> np.ndarray:
    """``value`` as an array of real, finite numbers of one of ``shapes`` (any shape for
    None); ``where`` names it in the error (e.g. ``"weight of node 'fc'"``)."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:  # ragged nested lists
        raise _fail(f"{where} is not an array of numbers ({error})") from None
    if array.dtype.kind not in "iuf":
        kind = _KINDS.get(array.dtype.kind, f"dtype {array.dtype}")
        raise _fail(f"{where} holds {kind} ({_shown(array)}); it must be real numbers")
    if shapes is not None and array.shape not in shapes:
        expected = " or ".join(str(shape) for shape in shapes)
        raise _fail(f"{where} has shape {array.shape}, expected {expected}")
    if not np.isfinite(array).all():
        raise _fail(f"{where} holds non-finite values; it must be finite numbers")
    return array


def _shown(value) -> str:
    """``value`` in a few characters on one line: a single value, else its type and shape."""
    if isinstance(value, np.ndarray):
        if value.size == 1:
            item = repr(value.reshape(-1)[0].item())
            return item if value.shape == () else f"{item} in an array of shape {value.shape}"
        return f"a {value.dtype} array of shape {value.shape}"
    shown = repr(value)
    return shown if len(shown) <= 40 and "\n" not in shown else f"a {type(value).__name__}"


def scalar(where: str, value) -> float:
    """A real, finite number (a 0-d or one-element array too)."""
    return float(numbers(where, value, ((), (1,))).reshape(-1)[0])


def integer(where: str, value, smallest: int | None = None) -> int:
    """A whole number (a float holding one too), at least ``smallest`` where given."""
    number = scalar(where, value)
    if number != round(number) or (smallest is not None and number < smallest):
        bound = "" if smallest is None else f" >= {smallest}"
        raise _fail(f"{where} is {number:g}; it must be a whole number{bound}")
    return int(number)


def count(where: str, value) -> int:
    """A whole number >= 0 (a float holding one too)."""
    return integer(where, value, 0)


def text(where: str, value) -> str:
    """A string (bytes as UTF-8, a 0-d string array)."""
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "US":
        value = value.item()
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            pass
    if not isinstance(value, str):
        raise _fail(f"{where} is {_shown(value)}; it must be text")
    return str(value)


def node_metadata(name: str, node: nir.NIRNode) -> dict:
    """A node's metadata dict ({} for None)."""
    metadata = node.metadata if node.metadata is not None else {}
    if not isinstance(metadata, dict):
        raise _fail(f"the metadata of node {name!r} is {_shown(metadata)}; it must be a dict")
    return metadata


class NeuronConstants(NamedTuple):
    """Decay per step and threshold (None: non-spiking) of one population; its family
    (``"lif"``, or ``"cuba"`` with the current's decay ``alpha``) and reset."""

    beta: float
    threshold: float | None
    family: str = "lif"
    alpha: float | None = None
    reset: str = RESET_CONVENTION
    reset_delay: bool = True


@dataclass
class Connection:
    """The branches from one population to another, summed back into one layer.

    Attributes:
        source, target: population node names.
        weight: (C_out, C_in) summed branch weights.
        delays: (C_out, C_in) int64 delay of every synapse with a non-zero
            weight, in steps of the graph (0 elsewhere).
        active: (C_out, C_in) bool, synapses with a non-zero weight.
        mask: (C_out, C_in) bool connectivity: the layer's ``mask`` metadata,
            else ``active`` (set by :func:`parse_graph`).
        bias: (C_out,) summed biases of Affine branches, or None.
        sign: (C_in,) Dale signs from the branches' metadata, or None.
        layer: the ``layer`` metadata of the branches, or None.
    """

    source: str
    target: str
    weight: np.ndarray
    delays: np.ndarray
    active: np.ndarray
    mask: np.ndarray | None = None
    bias: np.ndarray | None = None
    sign: np.ndarray | None = None
    layer: str | None = None
    branches: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, source: str, target: str, c_out: int, c_in: int) -> Connection:
        shape = (c_out, c_in)
        return cls(
            source, target, np.zeros(shape), np.zeros(shape, np.int64), np.zeros(shape, bool)
        )

    def add_branch(
        self, name: str, node: nir.NIRNode, weight: np.ndarray, steps: np.ndarray
    ) -> None:
        """Adds branch ``name``: (C_out, C_in) ``weight`` behind (C_in,) ``steps`` of delay."""
        nonzero = weight != 0
        branch_delays = np.broadcast_to(steps[None, :], weight.shape)
        clash = nonzero & self.active & (self.delays != branch_delays)
        if clash.any():
            i, j = (int(v) for v in np.argwhere(clash)[0])
            raise _fail(
                f"synapse {self.source}[{j}] -> {self.target}[{i}] has non-zero weights at "
                f"delays {self.delays[i, j]} and {branch_delays[i, j]} steps (branch {name!r}); "
                "a SpatialSNN synapse has one delay"
            )
        self.weight = self.weight + weight
        self.delays = np.where(nonzero, branch_delays, self.delays)
        self.active |= nonzero
        if isinstance(node, nir.Affine):
            bias = _array(name, "bias", node.bias, (weight.shape[0],))
            self.bias = bias if self.bias is None else self.bias + bias
        metadata = node_metadata(name, node)
        if "sign" in metadata:
            self.sign = _array(name, "sign metadata", metadata["sign"], (weight.shape[1],))
        if "layer" in metadata:
            self.layer = text(f"metadata 'layer' of node {name!r}", metadata["layer"])
        self.branches.append(name)


class Population(NamedTuple):
    """One population node of a graph.

    Attributes:
        name: node name.
        size: neurons.
        constants: its :class:`NeuronConstants`; None for the input.
        coords: (N, D) coordinates from its metadata, or None.
    """

    name: str
    size: int
    constants: NeuronConstants | None
    coords: np.ndarray | None


class ParsedNetwork(NamedTuple):
    """A validated graph in SpatialSNN terms.

    Attributes:
        populations: input first, readout last.
        feedforward: connection l feeds population l + 1.
        recurrent: per hidden population, its self-connection or None.
        metadata: the graph's metadata.
        dt: step in seconds.
        convention: how its time constants were read (``"nir"`` or ``"norse"``).
    """

    populations: list[Population]
    feedforward: list[Connection]
    recurrent: list[Connection | None]
    metadata: dict
    dt: float
    convention: str = "nir"


# ------------------------------------------------------------------ files
def read_graph_file(path: Path) -> nir.NIRGraph:
    """``nir.read`` with errors that say what is wrong with the file."""
    if not path.is_file():
        raise FileNotFoundError(f"no NIR file at {path}")
    try:
        return nir.read(path, type_check=False)
    except OSError as error:
        raise ValueError(
            f"{path} is not a NIR file: it cannot be opened as HDF5 ({error})"
        ) from error
    except KeyError as error:
        raise ValueError(
            f"{path} is an HDF5 file but holds no NIR graph (no {error} entry)"
        ) from error
    except (ValueError, TypeError, AssertionError, AttributeError, IndexError) as error:
        raise ValueError(f"{path} does not hold a valid NIR graph: {error}") from error


# ---------------------------------------------------------------- parsing
def parse_graph(
    graph: nir.NIRGraph,
    dt: float | None = None,
    reset: ResetConvention | None = None,
    convention: TimeConvention = "nir",
) -> ParsedNetwork:
    """Validates ``graph`` and reads its populations and connections (see the module doc).

    ``reset`` says how spiking nodes whose metadata states no reset reset:
    ``"subtract"`` (the threshold, one step late: snnTorch), ``"zero"`` (to 0 at once:
    NIR's semantics, Norse); None refuses them (``convention="norse"`` implies
    ``"zero"``). ``convention``: how time constants are written (``"norse"``: as Norse's
    exporter writes them, :func:`~spatial_layers.nir.conventions.true_tau`).
    """
    if reset not in (None, *CALLER_RESETS):
        raise ValueError(f"reset must be None, 'subtract', 'zero' or 'none', got {reset!r}")
    if convention not in TIME_CONVENTIONS:
        raise ValueError(f"convention must be one of {TIME_CONVENTIONS}, got {convention!r}")
    if convention == "norse" and reset is None:
        reset = "zero"  # Norse's cells reset to v_reset in the step of the spike
    metadata = dict(graph.metadata) if isinstance(graph.metadata, dict) else {}
    dt = resolve_dt(metadata, dt)
    nodes = dict(graph.nodes)
    for name, node in nodes.items():
        if node is None:
            raise _fail(
                f"node {name!r} is None: its exporter wrote no node for that module (Norse's "
                "to_nir writes None for an LICell: use LIBoxCell for a leaky readout)"
            )
        if not isinstance(node, SUPPORTED_NODES):
            supported = ", ".join(kind.__name__ for kind in SUPPORTED_NODES)
            raise _fail(
                f"node {name!r} is a nir.{type(node).__name__}; a SpatialSNN is built from "
                f"{supported}"
            )
    sources, targets = _adjacency(nodes, graph.edges)
    input_name = _single(nodes, nir.Input)
    output_name = _single(nodes, nir.Output)
    _check_wiring(nodes, sources, targets)
    (readout,) = sources[output_name]
    sizes = {
        name: _population_size(name, node, [nodes[s] for s in sources[name]])
        for name, node in nodes.items()
        if isinstance(node, POPULATION_NODES)
    }
    _check_output_size(nodes[output_name], output_name, sizes[readout])
    connections = _connections(nodes, sources, targets, sizes, dt)
    names, feedforward, recurrent = _chain(input_name, readout, connections, nodes)
    populations = [
        Population(
            name,
            sizes[name],
            None
            if name == input_name
            else _neuron_constants(name, nodes[name], dt, reset, convention),
            _coords(name, nodes[name], sizes[name]),
        )
        for name in names
    ]
    _check_shared_constants(populations)
    layer_records = metadata.get("layers", {}) if isinstance(metadata.get("layers"), dict) else {}
    for connection in [*feedforward, *recurrent]:
        if connection is not None:
            connection.mask = _mask(connection, layer_records)
    for connection in recurrent:
        if connection is not None:
            _remove_latency(connection)
    for connection in [*feedforward, *recurrent]:
        if connection is not None:
            gain = neuron_input_gain(connection.target, nodes[connection.target], dt, convention)
            _fold_gain(connection, gain)
    return ParsedNetwork(populations, feedforward, recurrent, metadata, dt, convention)


def resolve_dt(metadata: dict, dt: float | None) -> float:
    stored = metadata.get("dt")
    if stored is None and dt is None:
        raise _fail("the graph has no 'dt' in its metadata; pass dt= (seconds per step)")
    if dt is not None:
        dt = scalar("the argument dt", dt)
    if stored is not None:
        stored = scalar("the graph's metadata 'dt'", stored)
    if stored is not None and dt is not None and not np.isclose(stored, dt, rtol=1e-12):
        raise _fail(f"dt={dt} given, but the graph was exported with dt={stored}")
    value = stored if stored is not None else dt
    if value <= 0:
        what = "the graph's metadata 'dt'" if stored is not None else "the argument dt"
        raise _fail(f"{what} is {value}; it must be a positive number of seconds")
    return value


def _adjacency(
    nodes: dict[str, nir.NIRNode], edges
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    sources: dict[str, list[str]] = {name: [] for name in nodes}
    targets: dict[str, list[str]] = {name: [] for name in nodes}
    for edge in edges:
        try:
            source, target = (str(end) for end in edge)
        except ValueError:
            raise _fail(f"edge {edge!r} is not a (source, target) pair") from None
        for end in (source, target):
            if end not in nodes:
                raise _fail(
                    f"edge ({source!r}, {target!r}) names a node {end!r} that the graph does "
                    f"not have (nodes: {sorted(nodes)})"
                )
        sources[target].append(source)
        targets[source].append(target)
    return sources, targets


def _single(nodes: dict[str, nir.NIRNode], kind: type) -> str:
    found = [name for name, node in nodes.items() if isinstance(node, kind)]
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({found})"
        raise _fail(f"a SpatialSNN graph has exactly one nir.{kind.__name__} node, found {what}")
    return found[0]


def _kinds(nodes: dict[str, nir.NIRNode], names: list[str]) -> str:
    return ", ".join(f"{name!r} ({type(nodes[name]).__name__})" for name in names) or "nothing"


def _check_wiring(
    nodes: dict[str, nir.NIRNode], sources: dict[str, list[str]], targets: dict[str, list[str]]
) -> None:
    """Every node is connected as in the layout: populations -> [Delay] -> Linear -> population."""
    for name, node in nodes.items():
        before, after = sources[name], targets[name]
        if isinstance(node, nir.Input) and before:
            raise _fail(f"Input {name!r} receives edges from {_kinds(nodes, before)}")
        if isinstance(node, nir.Output) and not (
            len(before) == 1 and isinstance(nodes[before[0]], NEURON_NODES)
        ):
            raise _fail(
                f"Output {name!r} must receive from exactly one neuron node (the readout "
                f"population), it receives from {_kinds(nodes, before)}"
            )
        if isinstance(node, nir.Output) and after:
            raise _fail(f"Output {name!r} feeds {_kinds(nodes, after)}")
        if isinstance(node, nir.Delay):
            if len(before) != 1 or not isinstance(nodes[before[0]], POPULATION_NODES):
                raise _fail(
                    f"Delay {name!r} must receive from one population node (Input or a "
                    f"neuron), it receives from {_kinds(nodes, before)}"
                )
            if not after or not all(isinstance(nodes[t], BRANCH_NODES) for t in after):
                raise _fail(
                    f"Delay {name!r} must feed Linear/Affine nodes, it feeds {_kinds(nodes, after)}"
                )
        if isinstance(node, BRANCH_NODES):
            if len(before) != 1 or not isinstance(nodes[before[0]], (nir.Delay, *POPULATION_NODES)):
                raise _fail(
                    f"{type(node).__name__} {name!r} must receive from one Delay or population "
                    f"node, it receives from {_kinds(nodes, before)}"
                )
            if len(after) != 1 or not isinstance(nodes[after[0]], NEURON_NODES):
                raise _fail(
                    f"{type(node).__name__} {name!r} must feed exactly one neuron node (every "
                    f"population needs a LIF/IF/LI/I node), it feeds {_kinds(nodes, after)}"
                )
        if isinstance(node, NEURON_NODES) and not (
            before and all(isinstance(nodes[s], BRANCH_NODES) for s in before)
        ):
            raise _fail(
                f"{type(node).__name__} {name!r} must receive only from Linear/Affine "
                f"nodes, it receives from {_kinds(nodes, before)}"
            )


def _flat_size(shape) -> int | None:
    """C of a shape [C] or [1, C] (NIR writers add a batch axis of 1), else None."""
    array = np.asarray(shape) if shape is not None else None
    if array is None or array.dtype.kind not in "iu":  # not whole numbers (2.5, True, "7")
        return None
    shape = array.tolist()
    if not isinstance(shape, list) or not shape or any(n != 1 for n in shape[:-1]):
        return None
    return shape[-1] if len(shape) <= 2 and shape[-1] >= 1 else None


def _population_size(name: str, node: nir.NIRNode, incoming: list[nir.NIRNode]) -> int:
    """Neurons of a population node: the Input's shape, or the rows of the weights into it.

    Neuron parameters may be scalars or hold one value per neuron.
    """
    if isinstance(node, nir.Input):
        shape = node.input_type.get("input") if node.input_type else None
        size = _flat_size(shape)
        if size is None:
            raise _fail(
                f"Input {name!r} has shape {np.asarray(shape).tolist()}; a SpatialSNN takes a "
                "flat vector of channels, shape [C] or [1, C]"
            )
        return size
    rows = {int(np.shape(branch.weight)[0]) for branch in incoming if np.ndim(branch.weight) == 2}
    if len(rows) != 1:
        raise _fail(
            f"{type(node).__name__} {name!r} receives weights with {sorted(rows)} output rows; "
            "its population needs one size"
        )
    size = rows.pop()
    for parameter in NEURON_PARAMETERS:
        shape = np.shape(getattr(node, parameter, 0.0))
        if shape not in ((), (1,), (size,)):
            raise _fail(
                f"{parameter} of {type(node).__name__} {name!r} has shape {shape}; expected a "
                f"scalar or one value per neuron ({size},)"
            )
    return size


def _check_output_size(node: nir.Output, name: str, size: int) -> None:
    shape = node.output_type.get("output") if node.output_type else None
    if shape is not None and np.size(shape) and _flat_size(shape) != size:
        raise _fail(
            f"Output {name!r} has shape {np.asarray(shape).tolist()}, but the readout "
            f"population has {size} neurons"
        )


def _array(name: str, what: str, value, shape: tuple[int, ...]) -> np.ndarray:
    return numbers(f"{what} of node {name!r}", value, (shape,))


def _delay_steps(name: str, node: nir.Delay, dt: float, size: int) -> np.ndarray:
    seconds = _array(name, "delay", node.delay, (size,))
    steps = seconds / dt
    whole = np.round(steps)
    if (steps < -STEP_TOLERANCE).any() or (np.abs(steps - whole) > STEP_TOLERANCE).any():
        worst = float(steps[np.argmax(np.abs(steps - whole))])
        raise _fail(
            f"Delay {name!r} holds {worst * dt:g} s = {worst:g} steps of dt={dt:g} s; a "
            "SpatialSNN delays by whole, non-negative steps"
        )
    return whole.astype(np.int64)


def _connections(nodes, sources, targets, sizes, dt) -> dict[tuple[str, str], Connection]:
    connections: dict[tuple[str, str], Connection] = {}
    for name in sorted(n for n, node in nodes.items() if isinstance(node, BRANCH_NODES)):
        node = nodes[name]
        (before,) = sources[name]
        (target,) = targets[name]
        if isinstance(nodes[before], nir.Delay):
            (source,) = sources[before]
            steps = _delay_steps(before, nodes[before], dt, sizes[source])
        else:
            source = before
            steps = np.zeros(sizes[source], np.int64)
        weight = _array(name, "weight", node.weight, (sizes[target], sizes[source]))
        connection = connections.setdefault(
            (source, target), Connection.empty(source, target, sizes[target], sizes[source])
        )
        connection.add_branch(name, node, weight, steps)
    return connections


def _chain(
    input_name: str,
    readout: str,
    connections: dict[tuple[str, str], Connection],
    nodes: dict[str, nir.NIRNode],
) -> tuple[list[str], list[Connection], list[Connection | None]]:
    """Orders the populations input -> hidden ... -> readout, as a SpatialSNN stacks them."""
    into: dict[str, Connection] = {}
    recurrent: dict[str, Connection] = {}
    next_of: dict[str, str] = {}
    for (source, target), connection in connections.items():
        if source == target:
            recurrent[target] = connection
            continue
        if target in into:
            raise _fail(
                f"population {target!r} receives feed-forward input from "
                f"{into[target].source!r} and {source!r}; a SpatialSNN population has one "
                "input layer (plus its own recurrence)"
            )
        if source in next_of:
            raise _fail(
                f"population {source!r} feeds both {next_of[source]!r} and {target!r}; a "
                "SpatialSNN is a chain input -> hidden ... -> readout"
            )
        into[target], next_of[source] = connection, target
    order = [input_name]
    while order[-1] in next_of:
        following = next_of[order[-1]]
        if following in order:
            raise _fail(f"the feed-forward populations form a cycle through {following!r}")
        order.append(following)
    if order[-1] != readout:
        raise _fail(
            f"the chain {' -> '.join(order)} does not end at {readout!r}, the population "
            "that feeds the Output node"
        )
    stray = [n for n, node in nodes.items() if isinstance(node, NEURON_NODES) and n not in order]
    if stray:
        raise _fail(f"population(s) {stray} are not on the chain {' -> '.join(order)}")
    if len(order) < 3:
        raise _fail("a SpatialSNN needs at least one hidden population between input and readout")
    if readout in recurrent:
        raise _fail(f"the readout {readout!r} has recurrent connections; SpatialSNN's has none")
    for name in order[1:-1]:
        if not isinstance(nodes[name], SPIKING_NODES):
            raise _fail(
                f"hidden population {name!r} is a nir.{type(nodes[name]).__name__}; hidden "
                "neurons must spike (LIF, IF or CubaLIF)"
            )
    feedforward = [into[name] for name in order[1:]]
    return order, feedforward, [recurrent.get(name) for name in order[1:-1]]


def _uniform(name: str, node: nir.NIRNode, parameter: str) -> float:
    where = f"{parameter} of {type(node).__name__} {name!r}"
    values = numbers(where, getattr(node, parameter)).astype(np.float64)
    if values.size == 0:
        raise _fail(f"{where} is empty; it must hold a number")
    if (values != values.flat[0]).any():
        raise _fail(
            f"{type(node).__name__} {name!r} has per-neuron different {parameter} (from "
            f"{values.min():g} to {values.max():g}); a SpatialSNN population shares one value"
        )
    return float(values.flat[0])


def neuron_input_gain(
    name: str, node: nir.NIRNode, dt: float, convention: TimeConvention = "nir"
) -> float:
    """What NIR's Euler step multiplies the node's input by: r * dt / tau (r * dt for IF / I;
    ``CubaLIF``: the current's w_in * dt / tau_syn times the membrane's r * dt / tau_mem).

    With Norse's ``convention`` the time constants are Norse's (:func:`true_tau`) and a
    ``CubaLIF`` current takes its input with gain w_in (Norse's ``LIFCell`` jumps by it).
    """
    if isinstance(node, nir.CubaLIF):
        tau_syn = true_tau(_uniform(name, node, "tau_syn"), dt, convention)
        tau_mem = true_tau(_uniform(name, node, "tau_mem"), dt, convention)
        synapse = _uniform(name, node, "w_in") * (1.0 if convention == "norse" else dt / tau_syn)
        gain = synapse * _uniform(name, node, "r") * dt / tau_mem
    elif isinstance(node, nir.LIF | nir.LI):
        tau = true_tau(_uniform(name, node, "tau"), dt, convention)
        gain = _uniform(name, node, "r") * dt / tau
    else:
        gain = _uniform(name, node, "r") * dt
    if not (np.isfinite(gain) and gain > 0):
        raise _fail(
            f"{type(node).__name__} {name!r} has input gain r*dt/tau = {gain:g}; it must be > 0"
        )
    return 1.0 if abs(gain - 1) <= GAIN_TOLERANCE else gain


def _neuron_constants(
    name: str,
    node: nir.NIRNode,
    dt: float,
    reset: ResetConvention | None,
    convention: TimeConvention = "nir",
) -> NeuronConstants:
    kind = type(node).__name__
    metadata = node_metadata(name, node)
    beta, alpha = 1.0, None
    if isinstance(node, nir.LIF | nir.LI | nir.CubaLIF):
        if _uniform(name, node, "v_leak") != 0:
            raise _fail(f"{kind} {name!r} leaks towards v_leak != 0; spsnn's neurons leak to 0")
        beta = _decay(name, node, "tau_mem" if isinstance(node, nir.CubaLIF) else "tau", dt,
                      convention)  # fmt: skip
    if isinstance(node, nir.CubaLIF):
        alpha = _decay(name, node, "tau_syn", dt, convention)
        stored = _stored_decay(name, metadata, "alpha")
        if stored is not None and abs(stored - alpha) <= BETA_TOLERANCE:
            alpha = stored
    neuron_input_gain(name, node, dt, convention)  # checked here, folded into the weights later
    stored = _stored_decay(name, metadata, "beta")
    if stored is not None and abs(stored - beta) <= BETA_TOLERANCE:
        beta = stored  # the exact float the network was trained with
    family = "cuba" if isinstance(node, nir.CubaLIF) else "lif"
    if not isinstance(node, SPIKING_NODES):
        return NeuronConstants(beta, None, family, alpha)
    threshold = _uniform(name, node, "v_threshold")
    if threshold <= 0:
        raise _fail(f"{kind} {name!r} has v_threshold={threshold:g}; it must be > 0")
    if node.v_reset is not None and _uniform(name, node, "v_reset") != 0:
        raise _fail(f"{kind} {name!r} has v_reset != 0; spsnn's neurons reset to 0 or subtract")
    mechanism, delay = _check_reset(name, node, reset)
    return NeuronConstants(beta, threshold, family, alpha, mechanism, delay)


def _stored_decay(name: str, metadata: dict, key: str) -> float | None:
    """The exact decay a node's metadata records (one number, or one per neuron, equal)."""
    if metadata.get(key) is None:
        return None
    where = f"metadata {key!r} of node {name!r}"
    values = numbers(where, metadata[key]).astype(np.float64).reshape(-1)
    if values.size == 0 or (values != values[0]).any():
        raise _fail(f"{where} must be one number or one per neuron, all equal")
    return float(values[0])


def _decay(name: str, node: nir.NIRNode, parameter: str, dt: float, convention: str) -> float:
    """The decay per step ``1 - dt / tau`` of a node's time constant, in (0, 1)."""
    written = _uniform(name, node, parameter)
    tau = true_tau(written, dt, convention)
    decay = beta_from_tau(tau, dt) if tau > 0 else -1.0
    if not 0 < decay < 1:
        hint = ""
        if convention == "nir" and 0 < written < dt:
            hint = (
                " (a graph of Norse's exporter writes tau = dt / tau_inv: read it with "
                "convention='norse')"
            )
        raise _fail(
            f"{type(node).__name__} {name!r} has {parameter}={written:g} s, which gives a decay "
            f"1 - dt/tau = {decay:g} per step of dt={dt:g} s, outside (0, 1){hint}"
        )
    return decay


def _check_reset(name: str, node: nir.NIRNode, reset: ResetConvention | None) -> tuple[str, bool]:
    """The (reset, reset_delay) a spiking node states in its metadata, or the caller's."""
    metadata = node_metadata(name, node)
    stated = tuple(
        None
        if metadata.get(key) is None
        else text(f"metadata {key!r} of node {name!r}", metadata[key])
        for key in ("reset", "reset_timing")
    )
    if stated[0] in RESETS and stated[1] in RESET_TIMINGS:
        return str(stated[0]), RESET_TIMINGS[stated[1]]
    if "reset" not in metadata and reset is not None:
        return CALLER_RESETS[reset]  # the caller vouches for the convention
    if "reset" in metadata:
        raise _fail(
            f"{type(node).__name__} {name!r} states reset={stated[0]!r}, "
            f"reset_timing={stated[1]!r}; a SpatialSNN runs resets {RESETS} with timing "
            f"{tuple(RESET_TIMINGS)}"
        )
    raise _fail(
        f"{type(node).__name__} {name!r} does not state its reset in its metadata: read it "
        "with reset='zero' for NIR's semantics (to v_reset = 0 in the step of the spike, as "
        "Norse's cells; snnTorch's reset_mechanism='zero'), with reset='subtract' for the "
        "threshold subtracted one step late (snnTorch's Leaky and Synaptic, whose "
        "export_to_nir does not record it), or with reset='none' for no reset"
    )


def _check_shared_constants(populations: list[Population]) -> None:
    first, *hidden = populations[1:-1]
    for population in hidden:
        if population.constants != first.constants:
            raise _fail(
                f"hidden populations {first.name!r} ({first.constants}) and "
                f"{population.name!r} ({population.constants}) differ; "
                "a SpatialSNN uses one neuron model, decay, threshold and reset for all hidden "
                "neurons"
            )
    readout = populations[-1].constants
    threshold = first.constants.threshold
    if readout.threshold is not None and readout.threshold != threshold:
        raise _fail(
            f"the spiking readout {populations[-1].name!r} has threshold "
            f"{readout.threshold:g}, the hidden neurons {threshold:g}; a SpatialSNN "
            "uses one threshold"
        )
    if readout.threshold is not None:
        hidden = first.constants
        same = (readout.family, readout.alpha, readout.reset, readout.reset_delay)
        if same != (hidden.family, hidden.alpha, hidden.reset, hidden.reset_delay):
            raise _fail(
                f"the spiking readout {populations[-1].name!r} ({readout}) is not the hidden "
                f"neurons' model ({hidden}); a SpatialSNN's spiking readout is (with a decay "
                "of its own)"
            )
    elif readout.family != "lif":
        raise _fail(
            f"the readout {populations[-1].name!r} is a non-spiking CubaLIF; a SpatialSNN's "
            "non-spiking readout is a leaky integrator (nir.LI or nir.I)"
        )


def _mask(connection: Connection, layer_records: dict) -> np.ndarray:
    record = layer_records.get(connection.layer) if connection.layer else None
    stored = record.get("mask") if isinstance(record, dict) else None
    if stored is None:
        return connection.active
    where = f"the mask metadata of layer {connection.layer!r}"
    mask = np.asarray(stored)
    if mask.dtype.kind != "b":
        mask = numbers(where, mask)
        if not np.isin(mask, (0, 1)).all():
            raise _fail(f"{where} holds values other than 0 and 1; it must be a 0/1 mask")
    if mask.shape != connection.active.shape:
        raise _fail(f"{where} has shape {mask.shape}, its weights {connection.active.shape}")
    mask = mask.astype(bool)
    if (connection.active & ~mask).any():
        raise _fail(f"layer {connection.layer!r} has non-zero weights outside its mask metadata")
    return mask


def _fold_gain(connection: Connection, gain: float) -> None:
    """The target's input gain into the weights and bias: spsnn's neurons add W x with gain 1."""
    connection.weight = connection.weight * gain
    if connection.bias is not None:
        connection.bias = connection.bias * gain


def _remove_latency(connection: Connection) -> None:
    """Recurrent delays in the graph are d + 1: back to the layer's d."""
    if (connection.delays[connection.active] < RECURRENT_LATENCY).any():
        raise _fail(
            f"recurrent connection {connection.source!r} -> {connection.target!r} has synapses "
            f"with delay < {RECURRENT_LATENCY} step: a loop within one step, which spsnn's "
            "recurrence (one step of latency) cannot run"
        )
    connection.delays = np.where(connection.active, connection.delays - RECURRENT_LATENCY, 0)


def _coords(name: str, node: nir.NIRNode, size: int) -> np.ndarray | None:
    coords = node_metadata(name, node).get("coords")
    if coords is None:
        return None
    coords = numbers(f"coords metadata of {name!r}", coords)
    if coords.ndim != 2 or coords.shape[0] != size:
        raise _fail(f"coords metadata of {name!r} has shape {coords.shape}, expected ({size}, D)")
    return coords


# --------------------------------------------------------------- assembly
def build_network(parsed: ParsedNetwork) -> SpatialSNN:
    """The ``SpatialSNN(delays="free", kernel="round")`` of a parsed graph, in eval mode."""
    hidden, readout = parsed.populations[1].constants, parsed.populations[-1].constants
    sizes = [population.size for population in parsed.populations]
    connections = [*parsed.feedforward, *(c for c in parsed.recurrent if c is not None)]
    stored_max = parsed.metadata.get("max_delay")
    if stored_max is not None:
        stored_max = count("the graph's metadata 'max_delay'", stored_max)
    largest = max(int(c.delays[c.active].max(initial=0)) for c in connections)
    max_delay = max(largest, stored_max or 0)
    surrogate_alpha = parsed.metadata.get("surrogate_alpha")
    surrogate_alpha = (
        2.0
        if surrogate_alpha is None
        else scalar("the graph's metadata 'surrogate_alpha'", surrogate_alpha)
    )
    default_reset = (hidden.reset, hidden.reset_delay) == (RESET_CONVENTION, True)
    net = SpatialSNN(
        sizes[0],
        sizes[-1],
        sizes[1:-1],
        delays="free" if max_delay > 0 else "none",  # max_delay 0: no delay to learn
        kernel="round",
        max_delay=max_delay,
        beta=hidden.beta,
        neuron=hidden.family,
        alpha=hidden.alpha,
        reset=None if default_reset else hidden.reset,
        reset_delay=None if default_reset else hidden.reset_delay,
        threshold=hidden.threshold,
        surrogate_alpha=surrogate_alpha,
        readout_beta=readout.beta,
        recurrent=any(c is not None for c in parsed.recurrent),
        bias=any(c.bias is not None for c in connections),
        spiking_output=readout.threshold is not None,
    )
    for layer, connection in zip(net.layers, parsed.feedforward, strict=True):
        _load_layer(layer, connection)
    if net.is_recurrent:
        for layer, connection in zip(net.recurrent_layers, parsed.recurrent, strict=True):
            _load_layer(layer, connection)
    return net.eval()


@torch.no_grad()
def _load_layer(layer: SpatialDelay, connection: Connection | None) -> None:
    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=layer.weight.dtype, device=layer.weight.device)

    if connection is None:  # a hidden population without recurrence
        layer.weight.zero_()
        layer.mask.zero_()
        if layer.free_delays is not None:
            layer.free_delays.zero_()
        if layer.bias is not None:
            layer.bias.zero_()
        return
    layer.weight.copy_(tensor(connection.weight))
    layer.mask.copy_(torch.as_tensor(connection.mask, device=layer.mask.device))
    if layer.free_delays is not None:
        layer.free_delays.copy_(tensor(connection.delays))
    if layer.bias is not None:
        layer.bias.copy_(tensor(connection.bias) if connection.bias is not None else 0.0)
    if connection.sign is not None:
        sign = tensor(connection.sign)
        if not set(sign.unique().tolist()) <= {-1.0, 1.0}:
            raise _fail(f"sign metadata of layer {connection.layer!r} holds values other than ±1")
        if (tensor(connection.weight) * sign < 0).any():
            raise _fail(
                f"layer {connection.layer!r} has weights whose sign differs from its Dale "
                "sign metadata"
            )
        layer.sign = sign
