"""A tiny spiking classifier, random spike data, a trainer and a probe for the rewiring-callback
tests.

Input -> SpatialDelay -> LIF -> SpatialDelay -> summed readout membrane, both
layers sharing the hidden population's positions; a few hundred synapses so
that a whole fit takes well under a second per epoch on a CPU.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from spatial_layers import Leaky, NeuronPositions, SpatialDelay
from spatial_layers.sparsity import layer_active_counts, spatial_delay_layers

NUM_INPUTS, NUM_HIDDEN, NUM_CLASSES, NUM_STEPS = 12, 24, 3, 10


class TinySpikingNet(nn.Module):
    def __init__(self, delays: str = "spatial", dim: int = 2, recurrent_like: bool = False) -> None:
        super().__init__()
        pos_in = NeuronPositions(NUM_INPUTS, dim, scale=3.0)
        pos_hid = NeuronPositions(NUM_HIDDEN, dim, scale=3.0)
        pos_out = NeuronPositions(NUM_CLASSES, dim, scale=3.0)
        self.hidden = SpatialDelay(pos_in, pos_hid, max_delay=4, kernel="linear", delays=delays)
        self.lif = Leaky(beta=0.9, threshold=0.5)
        self.readout = SpatialDelay(pos_hid, pos_out, max_delay=4, kernel="linear", delays=delays)
        # a second projection out of the hidden population (shares its positions): Dale must
        # give a hidden neuron the same sign on both
        self.side = (
            SpatialDelay(pos_hid, pos_out, max_delay=4, kernel="linear", delays=delays)
            if recurrent_like
            else None
        )
        with torch.no_grad():
            self.hidden.weight.mul_(3.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spikes = self.lif(self.hidden(x))
        out = self.readout(spikes)
        if self.side is not None:
            out = out + self.side(spikes)
        return out.sum(0)


class TinyClassifier(L.LightningModule):
    def __init__(self, lr: float = 1e-2, optimizer: str = "adam", **net_kwargs) -> None:
        super().__init__()
        self.net = TinySpikingNet(**net_kwargs)
        self.lr = lr
        self.optimizer_name = optimizer

    def training_step(self, batch, batch_idx):
        spikes, labels = batch
        loss = F.cross_entropy(self.net(spikes.transpose(0, 1)), labels)
        return loss

    def validation_step(self, batch, batch_idx):
        spikes, labels = batch
        self.log("val_loss", F.cross_entropy(self.net(spikes.transpose(0, 1)), labels))

    def configure_optimizers(self):
        if self.optimizer_name == "sgd":
            return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def spike_data(num_samples: int = 64, seed: int = 0) -> TensorDataset:
    """Random (B, T, C) spikes with labels that depend on which inputs fire most."""
    generator = torch.Generator().manual_seed(seed)
    spikes = (torch.rand(num_samples, NUM_STEPS, NUM_INPUTS, generator=generator) < 0.3).float()
    labels = spikes[:, :, :NUM_CLASSES].sum(1).argmax(-1)
    return TensorDataset(spikes, labels)


def loader(num_samples: int = 64, batch_size: int = 16, seed: int = 0) -> DataLoader:
    return DataLoader(spike_data(num_samples, seed), batch_size=batch_size, shuffle=False)


def trainer(callbacks: list, max_steps: int = 40, **kwargs) -> L.Trainer:
    options = dict(
        accelerator="cpu",
        devices=1,
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        deterministic=True,
    )
    options.update(kwargs)
    return L.Trainer(callbacks=callbacks, **options)


class Probe(L.Callback):
    """Checks invariants around every optimizer step; must come after the rewiring callbacks."""

    def __init__(self, sparsity: float, dale: bool = False, distribution: str = "uniform") -> None:
        self.sparsity = sparsity
        self.dale = dale
        self.distribution = distribution
        self.checks = 0
        self.previous: dict[str, torch.Tensor] = {}
        self.changes: list[tuple[int, str, int, int]] = []

    def layers(self, pl_module):
        return spatial_delay_layers(pl_module)

    def check_counts(self, pl_module):
        layers = self.layers(pl_module)
        shapes = [tuple(layer.mask.shape) for _, layer in layers]
        targets = layer_active_counts(shapes, self.sparsity, self.distribution)
        for (name, layer), target in zip(layers, targets, strict=True):
            assert int(layer.mask.sum()) == target, name
            assert torch.all(layer.weight[~layer.mask] == 0), name
            if self.dale:
                effective = layer.effective_weight()
                assert torch.all(effective * layer.sign >= 0), name
                assert torch.all(layer.weight[layer.mask] >= 0), name  # DEEP R's theta
        self.checks += 1

    def on_train_start(self, trainer, pl_module):
        self.check_counts(pl_module)
        self.previous = {n: layer.mask.clone() for n, layer in self.layers(pl_module)}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        # after RigL closed the masks: the optimizer never sees a dormant gradient
        for name, layer in self.layers(pl_module):
            assert torch.all(layer.weight.grad[~layer.mask] == 0), name
        self.check_counts(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.check_counts(pl_module)
        for name, layer in self.layers(pl_module):
            grown = layer.mask & ~self.previous[name]
            dropped = self.previous[name] & ~layer.mask
            assert torch.all(layer.weight[grown] == 0), "regrown weights start at 0"
            if grown.any() or dropped.any():
                self.changes.append(
                    (trainer.global_step, name, int(dropped.sum()), int(grown.sum()))
                )
            self.previous[name] = layer.mask.clone()

    def on_validation_start(self, trainer, pl_module):
        self.check_counts(pl_module)


def record_dense_gradient(callback, fake_trainer, model, loss_of_layers) -> None:
    """One forward/backward through the shared hooks, as Lightning calls them."""
    callback.on_train_batch_start(fake_trainer, model, None, 0)
    loss_of_layers().backward()
    callback.on_before_optimizer_step(fake_trainer, model, None)
