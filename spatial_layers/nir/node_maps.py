"""spsnn's NIR graphs, delays included, run as snnTorch or Norse modules through nirtorch.

``nirtorch.nir_to_torch(graph, node_map)`` turns a NIR graph into a
``torch.fx.GraphModule`` that runs one time step per call,
``output, state = net(x_t, state)``; the node map says which torch module
each node becomes. snnTorch's ``import_from_nir`` and Norse's ``from_nir``
use maps that know neither ``nir.Delay`` nor ``nir.LI`` nodes and reset LIF
neurons to ``v_reset`` at once (NIR's convention); spsnn's neurons subtract
the threshold one step late, as ``snn.Leaky`` does by default. These maps
run spsnn's graphs (:func:`~spatial_layers.nir.to_nir`) as written:

.. code-block:: python

    graph = nir.read("yy.nir")
    net = nirtorch.nir_to_torch(graph, snntorch_node_map(graph))  # or norse_node_map

- :func:`snntorch_node_map`: neurons are ``snn.Leaky(init_hidden=True)``
  (reset by subtraction, one step late: spsnn's LIF step, the same operations), the
  readout an ``snn.Leaky`` without reset whose membrane is the output; the
  weights are spsnn's (the graph's times the target's input gain). Between
  sequences: ``spatial_layers.reset(net)`` (or ``snntorch.utils.reset``) and
  ``state = None``.
- :func:`norse_node_map`: neurons are Norse's ``LIFBoxCell`` (``LIBoxCell``
  for the readout) with the graph's ``tau``, ``dt`` and weights, that is the
  graph's own Euler step; the one-step-late reset by subtraction is their
  ``reset_method`` (:func:`subtract_one_step_late`). Same spikes as spsnn up
  to float rounding (the Euler step ``v + (dt/tau)(W'x - v)`` is
  ``beta v + W x`` in exact arithmetic; 0 mismatches in float64).
- ``nir.Delay`` becomes a :class:`DelayLine` in both (its ring of past inputs
  is the node's entry of nirtorch's ``state``).

nirtorch runs a cycle (a recurrent hidden -> hidden branch) with one step of
latency at its back edge, so the Delay nodes on a cycle run one step shorter
than they read, and the bias of a cycle's branch moves to a feed-forward
branch into the same population (nirtorch's first step would miss it): a
recurrent spike still arrives ``d + 1`` steps later, as the graph says.

Either map first validates the graph as :func:`~spatial_layers.nir.parse_nir`
does (same ``dt`` and ``reset`` arguments), so a graph they cannot run is
refused with an error that names the node.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import nir
import numpy as np
import torch
from torch import Tensor, nn

from spatial_layers.neurons.recurrent import RECURRENT_LATENCY
from spatial_layers.nir.conventions import true_tau
from spatial_layers.nir.reader import (
    BRANCH_NODES,
    NEURON_NODES,
    NeuronConstants,
    ParsedNetwork,
    ResetConvention,
    TimeConvention,
    neuron_input_gain,
    parse_graph,
)

NodeMap = dict[type, Callable[[nir.NIRNode], nn.Module]]


class DelayLine(nn.Module):
    """Delays each channel by a whole number of steps; the past is an explicit state.

    ``forward(x_t, state) -> (x_{t - steps}, state)``, zeros before the first
    step, as nirtorch and Norse pass states.

    Args:
        steps: (C,) delay of every channel, in steps (>= 0).

    Shape:
        - Input: (B, C) at one step.
        - Output: (B, C), and a state holding the last ``max(steps)`` inputs,
          (max(steps), B, C).

    Example:
        >>> line = DelayLine([2, 0])
        >>> state, out = None, []
        >>> for t in range(4):
        ...     y, state = line(torch.tensor([[t + 1.0, t + 1.0]]), state)
        ...     out.append(y[0].tolist())
        >>> out
        [[0.0, 1.0], [0.0, 2.0], [1.0, 3.0], [2.0, 4.0]]
    """

    def __init__(self, steps: Sequence[int]) -> None:
        super().__init__()
        steps = torch.as_tensor(np.asarray(steps), dtype=torch.long)
        if steps.dim() != 1 or (steps < 0).any():
            raise ValueError(f"steps must be a 1-D sequence of ints >= 0, got {steps.tolist()}")
        self.register_buffer("steps", steps, persistent=False)
        self.length = int(steps.max()) if steps.numel() else 0

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if state is None:
            state = x.new_zeros(self.length, *x.shape)
        history = torch.cat([x[None], state])  # history[k] = x_{t-k}
        index = self.steps.expand(1, *x.shape)
        return history.gather(0, index)[0], history[: self.length]

    def extra_repr(self) -> str:
        return f"steps={self.steps.tolist()}"


def subtract_one_step_late(z: Tensor, v: Tensor, reset: Tensor, th: Tensor, *, beta: float):
    r"""Norse ``reset_method`` that gives spsnn's reset: the threshold off one step later.

    Norse resets right after a spike, before the next decay; spsnn subtracts
    :math:`\theta` from the next step's membrane, after the decay:
    :math:`U_t = \beta U_{t-1} + I_t - \theta S_{t-1}`. Subtracting
    :math:`\theta / \beta` now is the same, once the decay has multiplied it by
    :math:`\beta`: Norse's stored ``v`` is then :math:`U - \theta S / \beta`
    and every spike is spsnn's. (``reset`` is Norse's ``v_reset``, unused.)
    """
    return v - z * (th / beta)


def snntorch_node_map(
    graph: nir.NIRGraph,
    *,
    dt: float | None = None,
    reset: ResetConvention | None = None,
    convention: TimeConvention = "nir",
) -> NodeMap:
    """Node map for ``nirtorch.nir_to_torch``: ``graph`` as snnTorch modules (see the module doc).

    LIF / IF nodes become ``snn.Leaky``, CubaLIF nodes ``snn.Synaptic`` (with the graph's
    reset mechanism; ``reset_delay=False`` for a reset to zero in the step of the spike,
    which snnTorch runs as spsnn does), LI / I nodes :class:`SnnTorchIntegrator`.

    Args:
        graph: the graph the map is for (the map knows its nodes).
        dt: step in seconds, for graphs without ``dt`` in their metadata (as
            :func:`~spatial_layers.nir.parse_nir`).
        reset: the reset convention of spiking nodes whose metadata states none (as
            :func:`~spatial_layers.nir.parse_nir`).
        convention: the time-constant convention of the graph's writer (as
            :func:`~spatial_layers.nir.parse_nir`).
    """
    import snntorch as snn

    context = _Context(graph, dt, reset, convention)

    def neuron(node: nir.NIRNode) -> nn.Module:
        constants = context.constants(node)
        if constants.threshold is None:
            return SnnTorchIntegrator(constants.beta)
        if (constants.reset, constants.reset_delay) == ("subtract", False):
            raise ValueError(
                f"{type(node).__name__} {context.name(node)!r} subtracts the threshold in the step "
                "of the spike, which snnTorch's reset_delay=False runs otherwise (it also "
                "subtracts one step late): run the graph with spsnn's from_nir"
            )
        common = {
            "beta": _scalar(constants.beta),
            "threshold": _scalar(constants.threshold),
            "init_hidden": True,
            "reset_mechanism": constants.reset,
            "reset_delay": constants.reset_delay,
        }
        if constants.family == "cuba":
            return snn.Synaptic(alpha=_scalar(constants.alpha), **common)
        return snn.Leaky(**common)

    return {
        **dict.fromkeys(
            (nir.Linear, nir.Affine), functools.partial(context.linear, scale=context.input_gain)
        ),
        nir.Delay: context.delay_line,
        **dict.fromkeys(NEURON_NODES, neuron),
    }


class SnnTorchIntegrator(nn.Module):
    r"""A non-spiking readout from snnTorch: ``snn.Leaky`` without reset, its membrane out.

    :math:`U_t = \beta U_{t-1} + I_t` (``init_hidden``: the membrane is kept inside).
    """

    def __init__(self, beta: float) -> None:
        super().__init__()
        import snntorch as snn

        self.leaky = snn.Leaky(
            beta=_scalar(beta), init_hidden=True, output=True, reset_mechanism="none"
        )

    def forward(self, current: Tensor) -> Tensor:
        return self.leaky(current)[1]


def norse_node_map(
    graph: nir.NIRGraph,
    *,
    dt: float | None = None,
    reset: ResetConvention | None = None,
    convention: TimeConvention = "nir",
) -> NodeMap:
    """Node map for ``nirtorch.nir_to_torch``: ``graph`` as Norse cells (see the module doc).

    LIF / LI nodes become ``LIFBoxCell`` / ``LIBoxCell``; a CubaLIF node Norse's
    ``LIFCell`` for a graph Norse wrote (``convention="norse"``: its own cell), else the
    composition Norse's importer builds, ``w_in`` -> ``LIBoxCell`` (the current) -> ``r`` ->
    ``LIFBoxCell`` (:class:`NorseCurrentBased`). Resets: one step late by subtraction
    (:func:`subtract_one_step_late`), to zero in the step of the spike (Norse's own), or
    none. Norse has no cell for NIR's IF and I nodes (``beta = 1``) nor for other resets:
    graphs with them are refused, naming the node.

    Args:
        graph: the graph the map is for (the map knows its nodes).
        dt: as :func:`snntorch_node_map`.
        reset: as :func:`snntorch_node_map`.
        convention: as :func:`snntorch_node_map`.
    """
    from norse.torch import (
        LIBoxCell,
        LIBoxParameters,
        LIFBoxCell,
        LIFBoxParameters,
        LIFCell,
        LIFParameters,
    )

    context = _Context(graph, dt, reset, convention)

    def inverse(node: nir.NIRNode, parameter: str) -> Tensor:
        written = float(np.asarray(getattr(node, parameter), np.float64).flat[0])
        return _scalar(1 / true_tau(written, context.dt, convention))

    def reset_method(node: nir.NIRNode, constants: NeuronConstants):
        timing = (constants.reset, constants.reset_delay)
        if timing == ("subtract", True):
            return functools.partial(subtract_one_step_late, beta=constants.beta)
        if timing == ("zero", False):
            return None  # Norse's reset_value: to v_reset = 0 at once
        if constants.reset == "none":
            return no_reset
        raise ValueError(
            f"{type(node).__name__} {context.name(node)!r} resets by {constants.reset!r} "
            f"{'one step late' if constants.reset_delay else 'in the step of the spike'}, "
            "which Norse's cells cannot run: run the graph with spsnn's from_nir"
        )

    def leaky(node: nir.LIF | nir.LI) -> nn.Module:
        constants = context.constants(node)
        tau_mem_inv = inverse(node, "tau")
        if constants.threshold is None:
            return LIBoxCell(LIBoxParameters(tau_mem_inv=tau_mem_inv), dt=context.dt)
        method = reset_method(node, constants)
        extra = {} if method is None else {"reset_method": method}
        parameters = LIFBoxParameters(
            tau_mem_inv=tau_mem_inv, v_th=_scalar(constants.threshold), **extra
        )
        return LIFBoxCell(parameters, dt=context.dt)

    def current_based(node: nir.CubaLIF) -> nn.Module:
        constants = context.constants(node)
        tau_syn_inv, tau_mem_inv = inverse(node, "tau_syn"), inverse(node, "tau_mem")
        method = reset_method(node, constants)
        if convention == "norse":
            if method is not None:
                raise ValueError(
                    f"CubaLIF {context.name(node)!r}: Norse's LIFCell resets to zero at once"
                )
            parameters = LIFParameters(
                tau_syn_inv=tau_syn_inv, tau_mem_inv=tau_mem_inv, v_th=_scalar(constants.threshold)
            )
            return NorseCell(LIFCell(parameters, dt=context.dt), _first(node.w_in))
        extra = {} if method is None else {"reset_method": method}
        synapse = LIBoxCell(LIBoxParameters(tau_mem_inv=tau_syn_inv), dt=context.dt)
        membrane = LIFBoxCell(
            LIFBoxParameters(tau_mem_inv=tau_mem_inv, v_th=_scalar(constants.threshold), **extra),
            dt=context.dt,
        )
        return NorseCurrentBased(_first(node.w_in), synapse, _first(node.r), membrane)

    def without_leak(node: nir.IF | nir.I) -> nn.Module:
        raise ValueError(
            f"a {type(node).__name__} node ({context.name(node)!r}, beta = 1) has no Norse cell "
            "(Norse's IAFCell resets to v_reset at once and has no leak-free integrator); "
            "run the graph with snntorch_node_map or spsnn's from_nir"
        )

    scale = context.resistance if convention == "nir" else context.norse_gain
    return {
        **dict.fromkeys((nir.Linear, nir.Affine), functools.partial(context.linear, scale=scale)),
        nir.Delay: context.delay_line,
        **dict.fromkeys((nir.LIF, nir.LI), leaky),
        nir.CubaLIF: current_based,
        **dict.fromkeys((nir.IF, nir.I), without_leak),
    }


def no_reset(z: Tensor, v: Tensor, reset: Tensor, th: Tensor) -> Tensor:
    """Norse ``reset_method`` of neurons that do not reset."""
    return v


class NorseCurrentBased(nn.Module):
    r"""A NIR ``CubaLIF`` node from Norse's cells, as Norse's importer composes it:
    ``w_in`` -> ``LIBoxCell`` (the current, :math:`\tau_{syn}`) -> ``r`` -> ``LIFBoxCell``
    (the membrane). ``forward(x, state) -> (spikes, state)``, as nirtorch passes states."""

    def __init__(self, w_in: float, synapse: nn.Module, r: float, membrane: nn.Module) -> None:
        super().__init__()
        self.w_in, self.r = w_in, r
        self.synapse, self.membrane = synapse, membrane

    def forward(self, x: Tensor, state: tuple | None = None) -> tuple[Tensor, tuple]:
        synapse_state, membrane_state = (None, None) if state is None else state
        current, synapse_state = self.synapse(self.w_in * x, synapse_state)
        spikes, membrane_state = self.membrane(self.r * current, membrane_state)
        return spikes, (synapse_state, membrane_state)


class NorseCell(nn.Module):
    """A Norse cell behind an input gain (a CubaLIF node's ``w_in``)."""

    def __init__(self, cell: nn.Module, gain: float) -> None:
        super().__init__()
        self.cell, self.gain = cell, gain

    def forward(self, x: Tensor, state=None):
        return self.cell(self.gain * x, state)


def _first(values) -> float:
    return float(np.asarray(values, np.float64).flat[0])


class _Context:
    """What a node map needs beyond one node: the graph validated, gains, cycles."""

    def __init__(
        self,
        graph: nir.NIRGraph,
        dt: float | None,
        reset: ResetConvention | None,
        convention: TimeConvention = "nir",
    ) -> None:
        parsed: ParsedNetwork = parse_graph(graph, dt, reset, convention)
        self.dt = parsed.dt
        self.convention = convention
        self._nodes = graph.nodes
        self._names = {id(node): name for name, node in graph.nodes.items()}
        self._constants = {p.name: p.constants for p in parsed.populations[1:]}
        # parse_graph checked the wiring: a branch feeds one neuron node, a Delay has one
        # source population and feeds branches only.
        self._source = {target: source for source, target in graph.edges}
        self._next = {source: target for source, target in graph.edges}
        branches = sorted(n for n, node in graph.nodes.items() if isinstance(node, BRANCH_NODES))
        self._cycle_bias: dict[str, np.ndarray] = {}
        for name in filter(self._on_cycle, branches):
            bias = getattr(graph.nodes[name], "bias", None)
            if bias is not None:
                total = self._cycle_bias.get(self._next[name], 0.0)
                self._cycle_bias[self._next[name]] = total + np.asarray(bias, np.float64)
        carriers = [n for n in branches if not self._on_cycle(n)]
        self._bias_carrier = {self._next[n]: n for n in reversed(carriers)}

    def _on_cycle(self, branch: str) -> bool:
        """Whether ``branch`` feeds the population it comes from (through a Delay)."""
        source = self._source[branch]
        if isinstance(self._nodes[source], nir.Delay):
            source = self._source[source]
        return source == self._next[branch]

    def name(self, node: nir.NIRNode) -> str:
        return self._names[id(node)]

    def constants(self, node: nir.NIRNode) -> NeuronConstants:
        return self._constants[self.name(node)]

    def input_gain(self, population: str) -> float:
        """What the graph's step multiplies the population's input by (r dt / tau, ...):
        spsnn's weights are the graph's times it."""
        return neuron_input_gain(population, self._nodes[population], self.dt, self.convention)

    def norse_gain(self, population: str) -> float:
        """The gain a Norse graph's weights take before Norse's cells (which apply the
        graph's own ``r``, ``w_in`` and time constants): 1."""
        return 1.0

    def resistance(self, population: str) -> float:
        """The population's ``r`` (one value: parse_graph checked it)."""
        return float(np.asarray(self._nodes[population].r, np.float64).flat[0])

    def linear(self, node: nir.Linear | nir.Affine, *, scale: Callable[[str], float]) -> nn.Linear:
        """The branch as ``nn.Linear`` in float64, times ``scale(target population)``.

        nirtorch feeds a cycle's branch into its population with one step of
        latency, so in the first step it adds nothing, not even its bias: the
        biases of cycle branches ride on the population's first other branch.
        """
        name = self.name(node)
        target = self._next[name]
        gain = scale(target)
        weight = torch.from_numpy(np.asarray(node.weight, np.float64) * gain)
        bias = None if self._on_cycle(name) else getattr(node, "bias", None)
        if self._bias_carrier.get(target) == name and target in self._cycle_bias:
            bias = self._cycle_bias[target] + (0.0 if bias is None else np.asarray(bias))
        module = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        module.to(torch.float64)
        with torch.no_grad():
            module.weight.copy_(weight)
            if bias is not None:
                module.bias.copy_(torch.from_numpy(np.asarray(bias, np.float64) * gain))
        return module

    def delay_line(self, node: nir.Delay) -> DelayLine:
        """The Delay in steps; on a cycle one step shorter (nirtorch's back edge adds it)."""
        name = self.name(node)
        steps = np.rint(np.asarray(node.delay, np.float64) / self.dt).astype(np.int64)
        if self._source[name] == self._next[self._next[name]]:  # hidden -> Delay -> W -> hidden
            steps = steps - RECURRENT_LATENCY
        return DelayLine(steps)


def _scalar(value: float) -> Tensor:
    """A 0-d float64 tensor: exact in float64 runs, cast with the module in float32 ones."""
    return torch.tensor(float(value), dtype=torch.float64)
