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
# # A spatial delay layer
#
# This tutorial builds a `SpatialDelay` layer by hand and checks what it computes:
#
# 1. a synapse whose neurons lie k space units apart (velocity 1) delays a spike by
#    k steps;
# 2. a fractional delay is spread over neighbouring steps by the delay kernel
#    (`gauss`, `linear`, `round`);
# 3. the coordinates are parameters: gradient descent moves neurons until a
#    synapse has the delay a task needs;
# 4. the streaming form (`layer.step`) gives the same numbers as the sequence call.
#
# It needs only torch, numpy and matplotlib. Run it as a script
# (`python docs/tutorials/delay_layer.py`) or open it as a notebook with jupytext.
# `SPSNN_TUTORIAL_SMALL=1` makes the training part shorter (the test suite runs it so).

# %%
import os

import matplotlib.pyplot as plt
import torch

from spatial_layers import NeuronPositions, SpatialDelay, count_parameters

SMALL = os.environ.get("SPSNN_TUTORIAL_SMALL") == "1"
torch.manual_seed(0)

# %% [markdown]
# ## A delay of k steps shifts a spike by k steps
#
# Two populations of one neuron each, in a 1-D space. The delay of the synapse
# j -> i is the distance between the neurons over the conduction velocity,
# $d_{ij} = \lVert p_i - p_j \rVert / v$, clamped to `[0, max_delay]` steps.
# Place the presynaptic neuron at 0 and the postsynaptic one at 3: with `v = 1`
# the delay is 3 steps.

# %%
pre = NeuronPositions(1, dim=1)  # coords: Parameter (1, 1)
post = NeuronPositions(1, dim=1)
with torch.no_grad():
    pre.coords.fill_(0.0)
    post.coords.fill_(3.0)
    layer = SpatialDelay(pre, post, max_delay=8, velocity=1.0, kernel="linear")
    layer.weight.fill_(1.0)

print(layer)
print("delay (steps):", layer.delays().item())

# %% [markdown]
# The layer is time-major: input (T, B, C_in), output (T, B, C_out). One spike at
# step 2 comes out at step 2 + 3 = 5.

# %%
x = torch.zeros(12, 1, 1)  # (T, B, C_in)
x[2] = 1.0
y = layer(x)  # (T, B, C_out)
print("input spike at", x[:, 0, 0].nonzero().flatten().tolist())
print("output at     ", y[:, 0, 0].nonzero().flatten().tolist())
assert y[:, 0, 0].argmax().item() == 5
torch.testing.assert_close(y[5, 0, 0], torch.tensor(1.0))

# %% [markdown]
# ## Fractional delays and the three kernels
#
# A delay is a real number. Each synapse's temporal kernel (length `max_delay + 1`,
# tap k meaning "k steps ago") puts the mass at that number:
#
# - `linear`: `1 - frac` on `floor(d)` and `frac` on `floor(d) + 1`, exact for any d;
# - `gauss`: a normalised Gaussian of width `sigma` (steps) centred on d, the
#   training kernel whose width is annealed towards ~0.5;
# - `round`: one tap at `round(d)` (half up), the evaluation and hardware kernel,
#   with the `linear` kernel's gradient passed straight through.
#
# `layer.kernel()` returns weight x kernel, shape (C_out, C_in, max_delay + 1).

# %%
with torch.no_grad():
    post.coords.fill_(3.4)  # delay 3.4 steps
print("default sigma (steps):", layer.sigma)  # max(max_delay / 2, 0.5)
kernels = {}
for kind, sigma in (("gauss", 4.0), ("gauss", 0.5), ("linear", None), ("round", None)):
    layer.kernel_kind = kind
    name = kind if sigma is None else f"gauss, sigma {sigma}"
    if sigma is not None:
        layer.sigma = sigma
    kernels[name] = layer.kernel()[0, 0].detach()
    print(f"{name:>16}:", [round(v, 3) for v in kernels[name].tolist()])

torch.testing.assert_close(kernels["linear"][3:5], torch.tensor([0.6, 0.4]))
assert kernels["round"].argmax().item() == 3

# %%
fig, ax = plt.subplots(figsize=(6, 3))
taps = torch.arange(layer.max_delay + 1)
for offset, (kind, kernel) in zip((-0.3, -0.1, 0.1, 0.3), kernels.items(), strict=True):
    ax.bar(taps + offset, kernel, width=0.2, label=kind)
ax.axvline(3.4, color="k", lw=0.8, ls="--")
ax.set(xlabel="tap k (steps ago)", ylabel="kernel weight", title="delay d = 3.4 steps")
ax.legend()
fig.tight_layout()

# %% [markdown]
# ## Learning where the neurons are
#
# Delays are not parameters of their own: the coordinates are. A gradient with
# respect to a delay reaches the positions through the distance. Here a layer of
# 1 -> 4 neurons in 2-D must reproduce a target: output neuron i should fire
# `target[i]` steps after the input spike. The loss compares the output with the
# target trains; Adam moves the coordinates, the weights stay fixed at 1.

# %%
target = torch.tensor([2.0, 4.0, 6.0, 7.0])  # steps
T, max_delay = 16, 10
pre2, post2 = NeuronPositions(1, dim=2, scale=2.0), NeuronPositions(4, dim=2, scale=2.0)
learner = SpatialDelay(pre2, post2, max_delay=max_delay, kernel="gauss", sigma=1.5)
learner.weight.requires_grad_(False).fill_(1.0)

x = torch.zeros(T, 1, 1)
x[0] = 1.0  # one input spike at step 0
goal = torch.zeros(T, 1, 4)
for i, d in enumerate(target.long().tolist()):
    goal[d, 0, i] = 1.0

print("initial delays:", [round(d, 2) for d in learner.delays().flatten().tolist()])
optimizer = torch.optim.Adam(learner.parameters(), lr=0.1)
steps = 60 if SMALL else 300
for step in range(steps):
    learner.sigma = max(1.5 * 0.99**step, 0.5)  # anneal the kernel width
    loss = torch.nn.functional.mse_loss(learner(x), goal)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
learned = learner.delays().detach().flatten()
print("learned delays:", [round(d, 2) for d in learned.tolist()], "target:", target.tolist())
if not SMALL:
    torch.testing.assert_close(learned, target, atol=0.5, rtol=0)

# %% [markdown]
# The learned coordinates, with each synapse drawn from the input neuron
# (square) to an output neuron (dot): its length over the velocity is its delay.

# %%
fig, ax = plt.subplots(figsize=(4, 4))
p, q = pre2.coords.detach(), post2.coords.detach()
for i in range(4):
    ax.plot([p[0, 0], q[i, 0]], [p[0, 1], q[i, 1]], color="0.7", zorder=0)
    ax.annotate(f"d = {learned[i]:.1f}", q[i], textcoords="offset points", xytext=(4, 4))
ax.scatter(p[:, 0], p[:, 1], marker="s", label="input")
ax.scatter(q[:, 0], q[:, 1], label="outputs")
ax.set_aspect("equal")
ax.legend()
fig.tight_layout()

# %% [markdown]
# ## Parameters
#
# A spatial layer learns C_in x C_out weights and (C_in + C_out) x D coordinates,
# instead of C_in x C_out weights and as many delays. At the size of the first
# layer of an SHD network (700 -> 256, D = 2):

# %%
shd_layer = SpatialDelay(NeuronPositions(700, dim=2), NeuronPositions(256, dim=2), max_delay=25)
free_layer = SpatialDelay(700, 256, max_delay=25, delays="free")
print("spatial:", count_parameters(shd_layer))
print("free:   ", count_parameters(free_layer))
assert count_parameters(shd_layer).coordinates == (700 + 256) * 2
assert count_parameters(free_layer).free_delays == 700 * 256

# %% [markdown]
# ## Streaming gives the same numbers
#
# `layer.step(x_t)` takes one (B, C_in) step and keeps a ring buffer of the last
# `max_delay + 1` inputs; `layer.reset_state()` starts a new sequence. Stepping
# through a sequence reproduces the sequence call.

# %%
layer = SpatialDelay(4, 3, max_delay=5, kernel="gauss")
x = torch.rand(20, 2, 4).lt(0.3).float()  # (T, B, C_in)
with torch.no_grad():
    whole = layer(x)
    layer.reset_state()
    stepped = torch.stack([layer.step(x_t) for x_t in x])
torch.testing.assert_close(stepped, whole)
print("step-by-step equals the sequence call:", tuple(stepped.shape))
