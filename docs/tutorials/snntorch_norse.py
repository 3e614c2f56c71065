# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The delay layer in snnTorch and Norse networks
#
# `SpatialDelay` is a plain `torch.nn.Module`; it sits between snnTorch's or
# Norse's neurons without adapters. This tutorial:
#
# 1. trains an snnTorch network with spatial delays step by step
#    (`init_hidden=True`), on a task that needs delays: which of two inputs
#    spiked first;
# 2. runs the same kind of layer between Norse neurons, over whole sequences and
#    step by step (`SpatialDelayCell`), and checks that both give the same numbers;
# 3. exports a trained `SpatialSNN` to NIR and runs the file with snnTorch and
#    Norse modules, delays included.
#
# It needs the interoperability and NIR extras (`pip install "spsnn[interop,nir]"`).
# `SPSNN_TUTORIAL_SMALL=1` trains for fewer steps (the test suite runs it so).

# %%
import os
import tempfile
from pathlib import Path

import nir
import nirtorch
import norse.torch as norse
import snntorch as snn
import torch
import torch.nn.functional as F

import spatial_layers
from spatial_layers import SpatialDelay, SpatialDelayCell, SpatialSNN
from spatial_layers.nir import from_nir, norse_node_map, snntorch_node_map, write_nir

SMALL = os.environ.get("SPSNN_TUTORIAL_SMALL") == "1"
torch.manual_seed(0)

# %% [markdown]
# ## A task that needs delays
#
# Each sample has two input channels that spike once each, at random steps in
# [0, 10). The label is 1 when channel 0 spikes first, else 0. A neuron without
# delays sees two coincident-looking inputs either way; with delays, a synapse from
# channel 0 that is as long as the gap makes the two spikes arrive together.

# %%
T = 20


def order_task(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes (T, B, 2), time-major, and labels (B,): 1 where channel 0 spikes first."""
    times = torch.stack([torch.randperm(10)[:2] for _ in range(batch)])  # distinct times
    x = torch.zeros(T, batch, 2)
    x[times[:, 0], torch.arange(batch), 0] = 1.0
    x[times[:, 1], torch.arange(batch), 1] = 1.0
    return x, (times[:, 0] < times[:, 1]).long()


x, y = order_task(4)
print("spikes (T, B, C):", tuple(x.shape), "labels:", y.tolist())

# %% [markdown]
# ## snnTorch, step by step
#
# With `init_hidden=True` the layer is an snnTorch-style module: each call takes one
# (B, C_in) step and keeps the last `max_delay` inputs inside, as
# `snn.Leaky(init_hidden=True)` keeps its membrane. `spatial_layers.reset(net)`
# starts a new sequence in both (snnTorch's own `utils.reset` does not reach spsnn's
# layers); `spatial_layers.detach(net)` cuts the gradient for truncated BPTT.

# %%
net = torch.nn.Sequential(
    SpatialDelay(2, 32, max_delay=10, init_hidden=True),  # (B, 2) -> (B, 32) per call
    snn.Leaky(beta=0.9, init_hidden=True),
    SpatialDelay(32, 2, max_delay=10, init_hidden=True),
    snn.Leaky(beta=0.9, init_hidden=True, output=True),
)
with torch.no_grad():
    net[0].weight.mul_(4.0)  # a few input spikes must reach the threshold


def run(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Readout membrane summed over time, (B, 2): the logits."""
    spatial_layers.reset(net)  # a new sequence: delay histories and membranes
    total = 0.0
    for x_t in x:  # x: (T, B, 2)
        _, membrane = net(x_t)
        total = total + membrane
    return total


def accuracy(net: torch.nn.Module, batch: int) -> float:
    """Accuracy on ``batch`` new samples."""
    with torch.no_grad():
        x, y = order_task(batch)
        return (run(net, x).argmax(-1) == y).float().mean().item()


optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
steps = 8 if SMALL else 400
print(f"before training: accuracy {accuracy(net, 256):.3f}")
for step in range(steps):
    x, y = order_task(32)
    loss = F.cross_entropy(run(net, x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 100 == 99:
        print(f"step {step + 1}: loss {loss.item():.3f}, accuracy {accuracy(net, 256):.3f}")
print(f"after {steps} steps: accuracy {accuracy(net, 256):.3f}")

# %% [markdown]
# For long sequences, backpropagate every few steps and cut the graph in between
# (truncated BPTT): `spatial_layers.detach(net)` detaches both the delay histories
# and snnTorch's membranes.

# %%
x, y = order_task(8)
spatial_layers.reset(net)
for t, x_t in enumerate(x):
    spikes, membrane = net(x_t)
    if t % 10 == 9:  # 10 steps per chunk
        F.cross_entropy(membrane, y).backward()
        spatial_layers.detach(net)

# %% [markdown]
# ## Norse, over sequences and step by step
#
# Over whole sequences the layer sits between Norse modules as is: both are
# time-major (T, B, C). Per step, `SpatialDelayCell(layer)` is the cell form with an
# explicit state, `forward(x_t, state) -> (y_t, state)`, which
# `norse.torch.SequentialState` passes along like a neuron's state. The cell shares
# the layer's parameters, so both forms compute the same numbers.

# %%
first = SpatialDelay(2, 32, max_delay=10)
second = SpatialDelay(32, 2, max_delay=10)
with torch.no_grad():
    first.weight.mul_(4.0)
x, _ = order_task(8)

spikes, _ = norse.LIF()(first(x))  # whole sequences: (T, B, 32)
membrane, _ = norse.LI()(second(spikes))  # (T, B, 2)

cells = norse.SequentialState(
    SpatialDelayCell(first), norse.LIFCell(), SpatialDelayCell(second), norse.LICell()
)
state = None
steps_out = []
for x_t in x:  # step by step
    out, state = cells(x_t, state)
    steps_out.append(out)
torch.testing.assert_close(torch.stack(steps_out), membrane)
print("Norse: sequence and step-by-step forms agree,", tuple(membrane.shape))

# %% [markdown]
# ## A trained network through NIR
#
# `write_nir` (or `spsnn export CKPT OUT.nir` for a checkpoint) writes a `SpatialSNN`
# as a NIR graph with integer delays: one `Delay` + `Linear` branch per distinct
# delay of a layer. No importer of the ecosystem runs NIR's `Delay` node, so
# spsnn ships node maps for `nirtorch.nir_to_torch` that build snnTorch
# (`snn.Leaky`) or Norse (`LIFBoxCell`) networks from the graph, delays included.
# All three runs below (spsnn's `from_nir`, snnTorch, Norse) agree.

# %%
torch.manual_seed(0)
path = Path(tempfile.mkdtemp()) / "order.nir"
write_nir(SpatialSNN(2, 2, [32], max_delay=10, init_gain=5.0), path)
graph = nir.read(path)
x, _ = order_task(8)

reference = from_nir(graph).run(x).membrane  # spsnn, (T, B, 2)

net_snntorch = nirtorch.nir_to_torch(graph, snntorch_node_map(graph))
spatial_layers.reset(net_snntorch)  # snnTorch's membranes; state=None resets the delays
state = None
for x_t in x:  # one step per call, as nirtorch runs graphs
    readout_snntorch, state = net_snntorch(x_t, state)

net_norse = nirtorch.nir_to_torch(graph, norse_node_map(graph))
state = None
for x_t in x:
    readout_norse, state = net_norse(x_t, state)

torch.testing.assert_close(readout_snntorch, reference[-1], rtol=0, atol=1e-5)
torch.testing.assert_close(readout_norse, reference[-1], rtol=0, atol=1e-5)
print("spsnn, snnTorch and Norse give the same readout at the last step")
