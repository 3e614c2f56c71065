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
