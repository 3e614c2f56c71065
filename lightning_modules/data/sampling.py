"""A training-set shuffle that depends only on (seed, epoch).

A plain ``DataLoader(shuffle=True)`` draws each epoch's order from torch's global
generator, so a run resumed from a checkpoint sees different batches than an
uninterrupted one. :class:`EpochShuffleSampler` fixes the order to
``permutation(seed, epoch)``: Lightning calls ``set_epoch`` at the start of every
epoch (also after resuming, with the restored epoch), and under DDP its
``DistributedSamplerWrapper`` forwards ``set_epoch`` to this sampler before sharding,
so every rank sees the same permutation and takes its own slice of it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochShuffleSampler(Sampler[int]):
    """Random permutation of ``range(num_samples)`` seeded by ``seed + epoch``.

    Args:
        num_samples: dataset length N.
        seed: base seed; epoch ``e`` uses ``torch.Generator().manual_seed(seed + e)``.

    >>> s = EpochShuffleSampler(5, seed=0)
    >>> a = list(s); s.set_epoch(1); b = list(s); s.set_epoch(0)
    >>> sorted(a) == list(range(5)) and list(s) == a and a != b
    True
    """

    def __init__(self, num_samples: int, seed: int = 0) -> None:
        if num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {num_samples}")
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch`` (called by Lightning every epoch)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.num_samples, generator=generator).tolist())

    def __len__(self) -> int:
        return self.num_samples
