"""The training shuffle depends on (seed, epoch) only; evaluation shards count each sample once."""

from types import SimpleNamespace

import pytest

from lightning_modules.data.sampling import EpochShuffleSampler


def test_same_seed_and_epoch_give_same_order():
    a, b = EpochShuffleSampler(100, seed=3), EpochShuffleSampler(100, seed=3)
    for epoch in (0, 5):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        assert list(a) == list(b)
        assert sorted(a) == list(range(100))


def test_order_changes_with_epoch_and_seed():
    s = EpochShuffleSampler(100, seed=0)
    first = list(s)
    s.set_epoch(1)
    assert list(s) != first
    assert list(EpochShuffleSampler(100, seed=1)) != first
    assert len(s) == 100


def test_resumed_sampler_repeats_the_uninterrupted_order():
    """A fresh sampler told the restored epoch replays that epoch's order."""
    run = EpochShuffleSampler(50, seed=7)
    orders = []
    for epoch in range(4):
        run.set_epoch(epoch)
        orders.append(list(run))
    resumed = EpochShuffleSampler(50, seed=7)
    resumed.set_epoch(2)
    assert list(resumed) == orders[2]


def test_ddp_ranks_share_one_permutation_per_epoch():
    """Lightning wraps custom samplers in DistributedSamplerWrapper under DDP; set_epoch
    must reach ours so ranks split the same, epoch-dependent permutation."""
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

    def ranks(epoch):
        out = []
        for rank in (0, 1):
            wrapper = DistributedSamplerWrapper(
                EpochShuffleSampler(10, seed=4), num_replicas=2, rank=rank, shuffle=False
            )
            wrapper.set_epoch(epoch)
            out.append(list(wrapper))
        return out

    first, second = ranks(0), ranks(1)
    assert sorted(first[0] + first[1]) == list(range(10))
    assert not set(first[0]) & set(first[1])
    assert first != second


def test_unpadded_sampler_gives_every_sample_once_over_the_ranks():
    """32 test samples on 3 devices: Lightning's DistributedSampler counts 33 (one twice);
    the evaluation sampler spsnn's DataModules use counts 32, rank r taking r, r+3, ..."""
    from torch.utils.data.distributed import DistributedSampler

    from lightning_modules.data import UnpaddedDistributedSampler

    padded = [i for r in range(3) for i in DistributedSampler(range(32), 3, r, shuffle=False)]
    assert len(padded) == 33  # what the tester's test_acc = 10/33 came from
    shards = [list(UnpaddedDistributedSampler(range(32), 3, r)) for r in range(3)]
    assert shards[2] == list(range(2, 32, 3)) and [len(s) for s in shards] == [11, 11, 10]
    assert sorted(i for shard in shards for i in shard) == list(range(32))
    assert [len(UnpaddedDistributedSampler(range(32), 3, r)) for r in range(3)] == [11, 11, 10]
    with pytest.raises(ValueError, match="an evaluation split of 2 samples cannot be shared by 3"):
        UnpaddedDistributedSampler(range(2), 3, 0)


def test_evaluation_loaders_of_split_datamodules_are_unpadded_under_ddp():
    """With a Trainer on 3 devices attached, validation and test loaders carry the unpadded
    sampler (Lightning keeps a DistributedSampler it finds); training keeps its shuffle."""
    from lightning_modules.data import UnpaddedDistributedSampler, YinYangDataModule

    data = YinYangDataModule(train_size=12, val_size=10, test_size=32, batch_size=4)
    data.trainer = SimpleNamespace(distributed_sampler_kwargs={"num_replicas": 3, "rank": 1})
    for loader in (data.val_dataloader(), data.test_dataloader(), data.predict_dataloader()):
        assert isinstance(loader.sampler, UnpaddedDistributedSampler)
        assert list(loader.sampler) == list(range(1, len(loader.dataset), 3))
    assert isinstance(data.train_dataloader().sampler, EpochShuffleSampler)
    data.trainer = SimpleNamespace(distributed_sampler_kwargs=None)  # one device
    assert not isinstance(data.test_dataloader().sampler, UnpaddedDistributedSampler)


def test_padding_evaluation_loader_is_named_with_the_fix():
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    from lightning_modules.data import UnpaddedDistributedSampler, evaluation_sampler_problem

    def loader(sampler):
        return DataLoader(range(32), sampler=sampler)

    assert evaluation_sampler_problem(
        loader(DistributedSampler(range(32), 3, 0, shuffle=False)), "test"
    ) == (
        "the test loader's DistributedSampler repeats 1 of its 32 samples to give each of 3 "
        "devices as many, so test metrics would count 33: build the loader with "
        "sampler=lightning_modules.data.UnpaddedDistributedSampler(dataset, trainer.world_size, "
        "trainer.global_rank) (Lightning keeps it; spsnn's DataModules do this), make the split "
        "a multiple of 3, or evaluate with --trainer.devices 1"
    )
    dropping = DistributedSampler(range(32), 3, 0, shuffle=False, drop_last=True)
    assert "drops 2 of its 32 samples" in evaluation_sampler_problem(loader(dropping), "val")
    for fine in (
        DistributedSampler(range(32), 2, 0),
        UnpaddedDistributedSampler(range(32), 3, 0),
        None,
    ):
        assert evaluation_sampler_problem(loader(fine), "test") is None
