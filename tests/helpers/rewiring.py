"""A tiny spiking classifier and random spike data for the rewiring-callback tests.

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
