"""Small random SpatialSNNs and spike inputs for the export tests, a naive NIR simulator, and
the comparison of a network in the Loihi 2 profile with the chip's numpy reference.

:func:`simulate_nir` is the independent reference: a loop over time that
reads nothing but the graph's nodes, edges and ``dt`` (plus the reset
convention its metadata states), with a ring of past inputs per Delay node
and forward-Euler neurons. It shares no code with spsnn.
"""

from __future__ import annotations

import copy
from collections import deque

import nir
import nirtorch
import numpy as np
import torch

import spatial_layers
from spatial_layers.hardware.loihi2.reference import run_program
from spatial_layers.networks import SpatialSNN
from spatial_layers.nir.loihi2 import load_program
from spatial_layers.sparsity import assign_dale_signs, set_density

NUM_INPUTS, HIDDEN, NUM_CLASSES, MAX_DELAY = 5, [7, 6], 3, 4

#: network variants of the round-trip tests: SpatialSNN keyword arguments
CASES = {
    "spatial": {},
    "free": {"delays": "free"},
    "none": {"delays": "none"},
    "masked_dale": {"bias": True},
    "batch_norm": {"batch_norm": True},
    "recurrent": {"recurrent": True, "bias": True},
    "spiking_readout": {"spiking_output": True, "readout_beta": 1.0, "delays": "free"},
}


def make_net(case: str, seed: int = 0) -> SpatialSNN:
    """A random 5 -> 7 -> 6 -> 3 network of the given case, in eval mode, that spikes."""
    torch.manual_seed(seed)
    net = SpatialSNN(
        NUM_INPUTS, NUM_CLASSES, HIDDEN, max_delay=MAX_DELAY, init_gain=3.0, **CASES[case]
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if case == "masked_dale":
            for layer in net.delay_layers():
                set_density(layer, 0.5, generator)
                assign_dale_signs(layer, 0.7, generator)
                layer.bias.uniform_(-0.2, 0.2, generator=generator)
        if case == "batch_norm":
            for norm in [block.norm for block in net.hidden]:
                norm.running_mean.uniform_(-0.3, 0.3, generator=generator)
                norm.running_var.uniform_(0.3, 2.0, generator=generator)
                norm.weight.uniform_(0.5, 1.5, generator=generator)
                norm.bias.uniform_(-0.2, 0.4, generator=generator)
        if case == "spiking_readout":
            net.layers[-1].weight.mul_(3.0)
        if case == "recurrent":
            for layer in net.recurrent_layers:
                layer.weight.mul_(0.7)
    return net.eval().requires_grad_(False)


def spike_input(steps: int = 25, batch: int = 4, seed: int = 1, rate: float = 0.3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, NUM_INPUTS, generator=generator) < rate).float()


def rounded(net: SpatialSNN) -> SpatialSNN:
    """The network as evaluated with integer delays: every layer's kernel set to 'round'."""
    net = copy.deepcopy(net)
    for layer in net.delay_layers():
        layer.kernel_kind = "round"
    return net


# ----------------------------------------------------------- reference simulator
def _delay_steps(node: nir.Delay, dt: float) -> np.ndarray:
    return np.rint(np.asarray(node.delay, dtype=np.float64) / dt).astype(int)


def _order(graph: nir.NIRGraph, dt: float) -> list[str]:
    """Nodes in an order where every within-step input is computed first (Kahn).

    Delay nodes of at least one step on every channel come first: their
    output is their input of earlier steps.
    """
    latched = {
        name
        for name, node in graph.nodes.items()
        if isinstance(node, nir.Delay) and (_delay_steps(node, dt) >= 1).all()
    }
    needs = {name: set() for name in graph.nodes}
    for source, target in graph.edges:
        if target not in latched:  # a whole-step Delay outputs its past: no input needed now
            needs[target].add(source)
    order, ready = [], deque(sorted(name for name, deps in needs.items() if not deps))
    while ready:
        name = ready.popleft()
        order.append(name)
        for other, deps in needs.items():
            if name in deps:
                deps.discard(name)
                if not deps and other not in order and other not in ready:
                    ready.append(other)
    assert len(order) == len(graph.nodes), "the graph has a loop without delay"
    return order


def simulate_nir(
    graph: nir.NIRGraph, x: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Runs ``graph`` on ``x`` (T, B, C) in float64.

    Returns every node's (T, B, N) output and every neuron node's (T, B, N)
    membrane (after the reset).

    Edges act within the step; a Delay of k * dt outputs its input of step
    t - k. Neurons: Euler step ``v += dt / tau * (v_leak - v + r * I)`` (IF /
    I: ``v += dt * r * I``); spikes ``v > v_threshold``; the reset is NIR's
    (``v = v_reset`` after a spike) unless the node's metadata says
    ``reset="subtract"``, ``reset_timing="previous_step"``: then the threshold
    is subtracted in the step after the one where v exceeded it.
    """
    dt = float(graph.metadata["dt"])
    steps, batch = x.shape[:2]
    incoming = {name: [s for s, t in graph.edges if t == name] for name in graph.nodes}
    outputs: dict[str, np.ndarray] = {}
    membranes: dict[str, np.ndarray] = {}
    traces: dict[str, np.ndarray] = {}
    history: dict[str, list[np.ndarray]] = {}
    order = _order(graph, dt)

    def total_input(name: str, t: int) -> np.ndarray:
        return sum(outputs[source][t] for source in incoming[name])

    for t in range(steps):
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, nir.Input):
                value = x[t]
            elif isinstance(node, nir.Delay):
                lags = _delay_steps(node, dt)
                if not (lags >= 1).all():
                    history.setdefault(name, []).append(total_input(name, t))
                past = history.get(name, [])
                value = np.zeros((batch, lags.size))
                for j, lag in enumerate(lags):
                    if t - lag >= 0:
                        value[:, j] = past[t - lag][:, j]
            elif isinstance(node, nir.Linear | nir.Affine):
                value = total_input(name, t) @ np.asarray(node.weight, np.float64).T
                if isinstance(node, nir.Affine):
                    value = value + np.asarray(node.bias, np.float64)
            elif isinstance(node, nir.Output):
                value = total_input(name, t)
            else:
                value = _neuron(node, name, total_input(name, t), membranes, dt)
                traces.setdefault(name, np.zeros((steps, *value.shape)))[t] = membranes[name]
            outputs.setdefault(name, np.zeros((steps, batch, np.shape(value)[-1])))[t] = value
        for name, node in graph.nodes.items():  # latch the inputs of whole-step delays
            if isinstance(node, nir.Delay) and (_delay_steps(node, dt) >= 1).all():
                history.setdefault(name, []).append(total_input(name, t))
    return outputs, traces


def _neuron(node, name: str, current: np.ndarray, membranes: dict, dt: float) -> np.ndarray:
    previous = membranes.get(name, np.zeros_like(current))
    if isinstance(node, nir.LIF | nir.LI):
        tau = np.asarray(node.tau, np.float64)
        change = dt / tau * (np.asarray(node.v_leak) - previous + np.asarray(node.r) * current)
    else:  # IF, I
        change = dt * np.asarray(node.r, np.float64) * current
    membrane = previous + change
    if isinstance(node, nir.LI | nir.I):
        membranes[name] = membrane
        return membrane
    threshold = np.asarray(node.v_threshold, np.float64)
    metadata = node.metadata or {}
    if (metadata.get("reset"), metadata.get("reset_timing")) == ("subtract", "previous_step"):
        membrane = membrane - threshold * (previous > threshold)
        spikes = (membrane > threshold).astype(np.float64)
    else:
        spikes = (membrane > threshold).astype(np.float64)
        membrane = np.where(spikes > 0, np.asarray(node.v_reset), membrane)
    membranes[name] = membrane
    return spikes


# ----------------------------------------------------------- the Loihi 2 reference


def compare(net: SpatialSNN, graph: nir.NIRGraph, x: torch.Tensor):
    """(spike mismatches, readout mismatches, spikes compared, the reference's run)."""
    program = load_program(graph)
    reference = run_program(program, x.numpy())
    ours = net.run(x)
    names = [p.name for p in program.populations if p.threshold is not None]
    spikes = sum(
        int((trace.bool().numpy() != reference.spikes[name]).sum())
        for name, trace in zip(names, ours.hidden_spikes, strict=True)
    )
    readout = program.populations[-1]
    scaled = ours.membrane.double().numpy() * 2.0**readout.fraction_bits
    membrane = int((scaled != reference.membranes[readout.name]).sum())
    return spikes, membrane, sum(t.numel() for t in ours.hidden_spikes), reference


def run_imported(graph: nir.NIRGraph, node_map, x: torch.Tensor) -> tuple[torch.Tensor, list]:
    """Steps the nirtorch module over ``x``: (T, B, K) output and each hidden population's
    (T, B, H) spikes (read from the modules of the graph's hidden nodes)."""
    net = nirtorch.nir_to_torch(graph, node_map(graph))
    hidden = sorted(name for name in graph.nodes if name.startswith("hidden_"))
    spikes = {name: [] for name in hidden}
    for name in hidden:
        getattr(net, name).register_forward_hook(
            lambda module, args, out, name=name: spikes[name].append(
                out[0] if isinstance(out, tuple) else out
            )
        )
    spatial_layers.reset(net)  # snnTorch's neurons keep their membranes inside
    state, outputs = None, []
    with torch.no_grad():
        for x_t in x:
            output, state = net(x_t, state)
            outputs.append(output)
    return torch.stack(outputs), [torch.stack(spikes[name]) for name in hidden]


def assert_runs_as_snntorch(
    net: torch.nn.Sequential, imported: SpatialSNN, x: torch.Tensor
) -> None:
    """``imported`` (``from_nir`` of snnTorch's export of ``net``: Linear, hidden neurons,
    Linear, output neurons, all ``init_hidden``) gives snnTorch's own hidden and output spikes
    on the (T, B, C) input ``x``, with 0 mismatches, and the hidden layer is neither silent
    nor saturated (so the comparison says something)."""
    hidden = []
    net[1].register_forward_hook(lambda module, args, out: hidden.append(out))
    spatial_layers.reset(net)
    with torch.no_grad():
        spikes = torch.stack([net(x_t)[0] for x_t in x])
        ours = imported.run(x)
    assert 0.05 < float(ours.hidden_spikes[0].mean()) < 0.6 and ours.spikes.any()
    assert int((ours.hidden_spikes[0] != torch.stack(hidden)).sum()) == 0
    assert int((ours.spikes != spikes).sum()) == 0
