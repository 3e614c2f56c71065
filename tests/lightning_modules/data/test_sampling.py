"""The training shuffle depends on (seed, epoch) only."""

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
