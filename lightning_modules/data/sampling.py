"""A training-set shuffle that depends only on (seed, epoch), and evaluation shards that
count every sample once.

A plain ``DataLoader(shuffle=True)`` draws each epoch's order from torch's global
generator, so a run resumed from a checkpoint sees different batches than an
uninterrupted one. :class:`EpochShuffleSampler` fixes the order to
``permutation(seed, epoch)``: Lightning calls ``set_epoch`` at the start of every
epoch (also after resuming, with the restored epoch), and under DDP its
``DistributedSamplerWrapper`` forwards ``set_epoch`` to this sampler before sharding,
so every rank sees the same permutation and takes its own slice of it.

Evaluation under DDP is another matter: Lightning's ``DistributedSampler`` repeats
samples until every rank has as many, and an accuracy counts the repeats (32 test
samples on 3 devices: 33 counted). :class:`UnpaddedDistributedSampler` gives rank ``r``
the samples ``r, r + W, ...`` (W ranks), each sample once; ranks may then run one batch
more or fewer, which is safe for evaluation (DDP syncs buffers on the first forward only
when no gradient is taken, and the metrics sync their totals at the end of the epoch).
:func:`evaluation_sampler_problem` finds a loader whose sampler would miscount.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import torch
from torch.utils.data import DataLoader, Sampler
from torch.utils.data.distributed import DistributedSampler


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


class UnpaddedDistributedSampler(DistributedSampler):
    """Rank ``rank`` of ``num_replicas`` takes samples ``rank, rank + num_replicas, ...`` in
    order: over all ranks, every sample of ``dataset`` exactly once (no padding, no dropping).

    Lightning keeps a ``DistributedSampler`` it finds in a loader, so an evaluation loader
    built with this one is counted right under DDP. For evaluation only: ranks may run
    different numbers of batches, which a training step's gradient all-reduce cannot.

    Raises:
        ValueError: fewer samples than ranks (a rank without a batch would wait for the
            others forever).

    >>> [list(UnpaddedDistributedSampler(range(5), 2, r)) for r in (0, 1)]
    [[0, 2, 4], [1, 3]]
    """

    def __init__(self, dataset: Sized, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        if len(dataset) < num_replicas:
            raise ValueError(
                f"an evaluation split of {len(dataset)} samples cannot be shared by "
                f"{num_replicas} devices (each needs one): use fewer devices "
                "(--trainer.devices) or a larger split"
            )
        self.total_size = len(dataset)
        self.num_samples = len(range(rank, self.total_size, num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.total_size, self.num_replicas))

    def __len__(self) -> int:
        return self.num_samples


def evaluation_sampler_problem(loader: object, split: str) -> str | None:
    """What is wrong with ``loader`` as an evaluation loader of ``split``, or None: a
    ``DistributedSampler`` that repeats samples to even out the ranks (Lightning's default
    when the split is not a multiple of the devices) or drops some (``drop_last``), so that
    an accuracy over all ranks would count another number of samples than the split has."""
    if not isinstance(loader, DataLoader):
        return None
    sampler = loader.sampler
    if not isinstance(sampler, DistributedSampler) and loader.batch_sampler is not None:
        sampler = getattr(loader.batch_sampler, "sampler", sampler)
    if not isinstance(sampler, DistributedSampler) or not isinstance(sampler.dataset, Sized):
        return None
    samples, counted = len(sampler.dataset), sampler.num_samples * sampler.num_replicas
    if isinstance(sampler, UnpaddedDistributedSampler) or counted == samples:
        return None
    how = f"repeats {counted - samples}" if counted > samples else f"drops {samples - counted}"
    return (
        f"the {split} loader's DistributedSampler {how} of its {samples} samples to give each "
        f"of {sampler.num_replicas} devices as many, so {split} metrics would count "
        f"{counted}: build the loader with sampler=lightning_modules.data."
        "UnpaddedDistributedSampler(dataset, trainer.world_size, trainer.global_rank) "
        "(Lightning keeps it; spsnn's DataModules do this), make the split a multiple of "
        f"{sampler.num_replicas}, or evaluate with --trainer.devices 1"
    )
