"""Random spike loaders and a quiet trainer of a few epochs for the callback tests."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from tests.helpers.training import quiet_trainer


def loaders(n=32, batch=8, seed=3):
    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 10, 5, generator=generator) < 0.4).float()
    y = torch.randint(0, 3, (n,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=batch)


def trainer(tmp_path, callbacks, max_epochs=4, **kwargs):
    return quiet_trainer(tmp_path, callbacks, max_epochs=max_epochs, **kwargs)
