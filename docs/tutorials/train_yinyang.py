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
# # Train a spatial SNN on Yin-Yang
#
# Yin-Yang (Kriener et al. 2021) is a small 2-D classification task with three
# classes (yin, yang, dot) that a linear classifier cannot solve. Each sample is
# four features `(x, y, 1 - x, 1 - y)` in [0, 1]; each feature becomes one input
# spike at a time that grows with its value, plus a bias spike at step 0.
#
# This tutorial trains the network of `recipes/yinyang.yaml` (5 inputs, 128 hidden
# LIF neurons, 3 readout neurons, 2-D coordinates, delays up to 10 steps) twice:
#
# 1. with a plain PyTorch loop, to show every piece;
# 2. with the training app's `SpikingClassifier` and a Lightning `Trainer`, which is
#    what `spsnn fit --config recipes/yinyang.yaml` runs (plus logging, checkpoints,
#    `summary.json` and layout plots).
#
# It needs the training extra (`pip install "spsnn[train]"`). The full-size run
# trains each network for 10 epochs on the published splits (5000 training samples;
# validation accuracy after every epoch, test accuracy once at the end): both
# together took about 6.5 minutes on this project's 2-core machine while other jobs
# shared it. The recipe trains for 60 epochs; the Results page has what it reaches.
# `SPSNN_TUTORIAL_SMALL=1` trains on 256 samples for one epoch (the test suite runs
# it so: a smoke test, not a result).

# %%
import math
import os

import lightning as L
import torch
import torch.nn.functional as F

from lightning_modules.callbacks import SigmaAnnealing
from lightning_modules.classifier import SpikingClassifier
from lightning_modules.data import YinYangDataModule, latency_encode, make_yinyang
from spatial_layers import SpatialSNN, count_parameters

SMALL = os.environ.get("SPSNN_TUTORIAL_SMALL") == "1"
TRAIN_SIZE, TEST_SIZE = (256, 256) if SMALL else (5000, 1000)
EPOCHS = 1 if SMALL else 10
torch.manual_seed(42)

# %% [markdown]
# ## Data: points, then spikes
#
# `make_yinyang(size, seed)` draws the data set as the published generator does
# (train seed 42, validation 41, test 40). `latency_encode` turns each feature into
# one spike at step `t_min + value * (t_max - t_min)`; with `rounding="linear"` a
# spike between two steps is split over both, so its exact time is kept. The
# result is (N, T, C) with C = 4 features + 1 bias channel, as the recipe sets it
# (30 steps, spikes within the first 20).

# %%
ENCODING = {"num_steps": 30, "t_min": 0.0, "t_max": 20.0, "bias_step": 0, "rounding": "linear"}
train_points, train_labels = make_yinyang(TRAIN_SIZE, seed=42)
val_points, val_labels = make_yinyang(TEST_SIZE, seed=41)
test_points, test_labels = make_yinyang(TEST_SIZE, seed=40)
train_x = latency_encode(train_points, **ENCODING)  # (N, T, C) = (N, 30, 5)
val_x = latency_encode(val_points, **ENCODING)
test_x = latency_encode(test_points, **ENCODING)
train_y, val_y, test_y = (torch.as_tensor(y) for y in (train_labels, val_labels, test_labels))
print("train spikes:", tuple(train_x.shape), "labels:", train_y.bincount().tolist())

# %% [markdown]
# ## The network
#
# `SpatialSNN(num_inputs, num_classes, hidden_sizes, ...)` stacks delayed layers
# and LIF populations; each population (inputs, hidden, readout) has one set of
# coordinates, shared by the layers on both sides of it. Its input is time-major
# (T, B, C); its output is the readout membrane (T, B, classes). `init_gain=5`
# scales the initial weights so that a handful of input spikes can drive the
# hidden neurons.

# %%
net = SpatialSNN(5, 3, [128], dim=2, max_delay=10, init_gain=5.0)
print(net)
print(count_parameters(net))

# %% [markdown]
# ## A plain PyTorch loop
#
# Two parameter groups, as the training app uses: weights (learning rate 0.01) and
# coordinates (0.1), both on a cosine schedule. The logits are the readout membrane
# averaged over time (the recipe's `readout: mean`). The Gaussian kernel width
# `sigma` of every delayed layer shrinks from `max_delay / 2` to 0.5 steps over the
# first quarter of the steps (what the `SigmaAnnealing` callback does).

# %%
positions = [p for name, p in net.named_parameters() if "positions" in name]
weights = [p for name, p in net.named_parameters() if "positions" not in name]
optimizer = torch.optim.Adam([{"params": weights, "lr": 0.01}, {"params": positions, "lr": 0.1}])
batches = math.ceil(TRAIN_SIZE / 64)
total = EPOCHS * batches
schedule = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total))
)


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of ``model`` on spikes x (N, T, C) and labels y (N,)."""
    model.eval()
    with torch.no_grad():
        logits = model(x.transpose(0, 1)).mean(dim=0)  # (T, N, 3) -> (N, 3)
    model.train()
    return (logits.argmax(-1) == y).float().mean().item()


step = 0
for epoch in range(EPOCHS):
    order = torch.randperm(TRAIN_SIZE)
    for batch in order.split(64):
        progress = min(step / (0.25 * total), 1.0)
        for layer in net.layers:
            layer.sigma = 5.0 * (0.5 / 5.0) ** progress  # exponential, 5 -> 0.5 steps
        x = train_x[batch].transpose(0, 1)  # (B, T, C) -> (T, B, C)
        loss = F.cross_entropy(net(x).mean(dim=0), train_y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
    val_accuracy = accuracy(net, val_x, val_y)
    print(f"epoch {epoch}: loss {loss.item():.3f}, validation accuracy {val_accuracy:.3f}")
print(f"test accuracy after the last epoch: {accuracy(net, test_x, test_y):.3f}")

# %% [markdown]
# The delays the network learned, in steps (first layer: 5 inputs -> 128 hidden):

# %%
delays = net.layers[0].delays().detach()
low, median, high = delays.min().item(), delays.median().item(), delays.max().item()
print(f"delays (steps): min {low:.2f}, median {median:.2f}, max {high:.2f}")

# %% [markdown]
# ## The same with the training app
#
# `SpikingClassifier` holds the network and adds the readout (`"max"`, `"sum"`,
# `"mean"` or `"spike_count"`), the loss, accuracy metrics and the two parameter
# groups with their schedules; `YinYangDataModule` generates and encodes the
# published splits (validation held out: train 5000 / seed 42, validation 1000 /
# seed 41, test 1000 / seed 40) and yields batch-first (B, T, C) batches. These are
# the classes and arguments of `recipes/yinyang.yaml`; `spsnn fit` builds them from
# the file and adds loggers, checkpoints and the run summary.

# %%
data = YinYangDataModule(
    batch_size=64,
    num_steps=30,
    t_max=20.0,
    rounding="linear",
    train_size=TRAIN_SIZE,
    val_size=TEST_SIZE,
    test_size=TEST_SIZE,
)
model = SpikingClassifier(
    SpatialSNN(data.num_inputs, data.num_classes, [128], dim=2, max_delay=10, init_gain=5.0),
    readout="mean",
    lr=0.01,
    position_lr=0.1,
)
trainer = L.Trainer(
    max_epochs=EPOCHS,
    callbacks=[SigmaAnnealing()],
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    deterministic=True,
)
trainer.fit(model, data)
print(trainer.test(model, data, verbose=False))
