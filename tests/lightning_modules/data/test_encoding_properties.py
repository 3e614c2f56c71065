"""Property tests of binning's contract: every event is placed once or counted as lost,
never placed outside (T, C), and the counts equal a per-event reference."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_modules.data.encoding import (
    LostEvents,
    bin_events,
    binned_event_indices,
    num_binned_channels,
)

times = st.one_of(
    st.integers(-50_000, 200_000),
    st.floats(-5e4, 2e5, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e300]),
)
events = st.lists(st.tuples(times, st.integers(-3, 12)), max_size=60)


def reference(event_list, time_bin_ms, num_steps, channel_bin, num_units):
    """Per event: its (step, channel), or the reason it is lost (LostEvents' order)."""
    channels = num_binned_channels(num_units, channel_bin)
    counts = np.zeros((num_steps, channels))
    lost = dict.fromkeys(LostEvents._fields, 0)
    for t, u in event_list:
        if not math.isfinite(t):
            lost["non_finite"] += 1
        elif not 0 <= u < num_units:
            lost["outside_units"] += 1
        elif t < 0:
            lost["before_onset"] += 1
        elif math.floor(t / (time_bin_ms * 1000)) >= num_steps:
            lost["after_window"] += 1
        else:
            counts[math.floor(t / (time_bin_ms * 1000)), u // channel_bin] += 1
    return counts, LostEvents(**lost)


@settings(max_examples=300, deadline=None)
@given(
    event_list=events,
    time_bin_ms=st.sampled_from([0.5, 1.0, 7.5, 10.0]),
    num_steps=st.integers(1, 30),
    channel_bin=st.integers(1, 5),
    num_units=st.integers(1, 10),
    as_float=st.booleans(),
)
def test_binning_conserves_events_and_stays_in_the_grid(
    event_list, time_bin_ms, num_steps, channel_bin, num_units, as_float
):
    ts = np.array([t for t, _ in event_list], dtype=np.float64)
    if not as_float:  # tonic's int64 microseconds (finite times only)
        ts = np.where(np.isfinite(ts) & (np.abs(ts) < 1e12), ts, 0).astype(np.int64)
        event_list = [(int(t), u) for t, (_, u) in zip(ts, event_list, strict=True)]
    us = np.array([u for _, u in event_list], dtype=np.int64)
    flat, lost = binned_event_indices(
        ts, us, time_bin_ms=time_bin_ms, num_steps=num_steps, channel_bin=channel_bin,
        num_units=num_units,
    )  # fmt: skip
    size = num_steps * num_binned_channels(num_units, channel_bin)
    assert flat.dtype == np.int64
    assert len(flat) + sum(lost) == len(event_list)  # conserved
    assert flat.size == 0 or (flat.min() >= 0 and flat.max() < size)  # inside (T, C)
    want, want_lost = reference(event_list, time_bin_ms, num_steps, channel_bin, num_units)
    assert lost == want_lost
    got = np.bincount(flat, minlength=size).reshape(want.shape)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=100, deadline=None)
@given(
    ts=st.lists(st.integers(0, 3_000_000), max_size=80),
    num_steps=st.integers(1, 200),
    channel_bin=st.integers(1, 9),
)
def test_dense_counts_sum_to_the_kept_events(ts, num_steps, channel_bin):
    rng = np.random.default_rng(len(ts))
    units = rng.integers(0, 700, len(ts))
    dense = bin_events(
        np.array(ts, np.int64), units, time_bin_ms=10.0, num_steps=num_steps,
        channel_bin=channel_bin,
    )  # fmt: skip
    kept = sum(t // 10_000 < num_steps for t in ts)
    assert dense.shape == (num_steps, math.ceil(700 / channel_bin))
    assert dense.sum() == kept and dense.min() >= 0
