"""Spike encodings against naive per-element loops."""

import math

import numpy as np
import pytest
import torch

from lightning_modules.data.encoding import (
    bin_events,
    event_bin_indices,
    latency_encode,
    latency_steps,
    num_binned_channels,
)


def naive_latency(values, num_steps, t_min, t_max, bias_step):
    n, f = values.shape
    out = np.zeros((n, num_steps, f + (bias_step is not None)), np.float32)
    for i in range(n):
        for j in range(f):
            x = t_min + float(values[i, j]) * (t_max - t_min)
            step = math.floor(x + 0.5)  # round half up
            out[i, step, j] = 1.0
        if bias_step is not None:
            out[i, bias_step, f] = 1.0
    return out


@pytest.mark.parametrize("bias_step", [None, 0, 7])
def test_latency_encode_matches_naive_loop(bias_step):
    rng = np.random.default_rng(0)
    values = rng.random((50, 4))
    values[0] = [0.0, 1.0, 0.5, 0.25]
    got = latency_encode(values, num_steps=30, t_min=2.0, t_max=25.0, bias_step=bias_step)
    want = naive_latency(values, 30, 2.0, 25.0, bias_step)
    assert got.dtype == torch.float32
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.numpy(), want)
    assert (got.sum(dim=1) == 1).all()  # exactly one spike per channel


def test_linear_latency_matches_naive_loop_and_keeps_exact_times():
    rng = np.random.default_rng(2)
    values = rng.random((40, 4))
    values[0] = [0.0, 1.0, 0.5, 0.1]
    got = latency_encode(
        values, num_steps=25, t_min=1.5, t_max=23.0, bias_step=3, rounding="linear"
    ).numpy()
    want = np.zeros((40, 25, 5), np.float32)
    for i in range(40):
        for j in range(4):
            t = 1.5 + values[i, j] * 21.5
            low = math.floor(t)
            want[i, low, j] += 1.0 - (t - low)
            if t > low:
                want[i, low + 1, j] += t - low
        want[i, 3, 4] = 1.0
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)  # unit mass per channel
    mean_time = (got[:, :, :4] * np.arange(25)[None, :, None]).sum(axis=1)
    np.testing.assert_allclose(mean_time, 1.5 + values * 21.5, atol=1e-5)


def test_latency_rounds_not_truncates():
    steps = latency_steps(np.array([0.26, 0.24, 0.25, 0.96]), t_min=0.0, t_max=10.0)
    assert steps.tolist() == [3, 2, 3, 10]  # 2.6 -> 3 (truncation would give 2)


def test_latency_encode_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        latency_encode(np.array([[1.5]]), num_steps=10, t_min=0, t_max=5)
    with pytest.raises(ValueError, match="num_steps"):
        latency_encode(np.array([[0.5]]), num_steps=10, t_min=0, t_max=10)
    with pytest.raises(ValueError, match="bias_step"):
        latency_encode(np.array([[0.5]]), num_steps=10, t_min=0, t_max=5, bias_step=10)
    with pytest.raises(ValueError, match="rounding"):
        latency_encode(np.array([[0.5]]), num_steps=10, t_min=0, t_max=5, rounding="floor")
    with pytest.raises(ValueError, match="num_steps"):  # ceil(8.6) = 9 > 8
        latency_encode(np.array([[0.5]]), num_steps=9, t_min=0, t_max=8.6, rounding="linear")


def naive_bins(times_us, units, time_bin_ms, num_steps, channel_bin, num_units=700):
    channels = -(-num_units // channel_bin)
    out = np.zeros((num_steps, channels), np.float32)
    for t, u in zip(times_us.tolist(), units.tolist(), strict=True):
        step = math.floor(t / (time_bin_ms * 1000.0))
        if 0 <= step < num_steps:
            out[step, u // channel_bin] += 1.0
    return out


@pytest.mark.parametrize(
    ("time_bin_ms", "num_steps", "channel_bin"),
    [(10.0, 100, 5), (2.5, 300, 3), (1.0, 50, 1), (25.0, 40, 7)],
)
def test_bin_events_matches_naive_loop(time_bin_ms, num_steps, channel_bin):
    rng = np.random.default_rng(1)
    n = 5000
    times_us = rng.integers(0, 1_400_000, n)  # some fall after the window
    times_us[:4] = [0, 9_999, 10_000, int(num_steps * time_bin_ms * 1000)]  # edges
    units = rng.integers(0, 700, n)
    units[:2] = [0, 699]
    got = bin_events(
        times_us, units, time_bin_ms=time_bin_ms, num_steps=num_steps, channel_bin=channel_bin
    )
    want = naive_bins(times_us, units, time_bin_ms, num_steps, channel_bin)
    assert got.dtype == np.float32
    assert got.shape == (num_steps, num_binned_channels(700, channel_bin))
    np.testing.assert_array_equal(got, want)
    assert got.max() > 1  # counts, not clipped to spikes


def test_event_bin_indices_drops_events_after_window():
    flat = event_bin_indices(
        np.array([0, 999_999, 1_000_000, 2_000_000]),
        np.array([3, 10, 10, 10]),
        time_bin_ms=10.0,
        num_steps=100,
        channel_bin=5,
    )
    assert flat.tolist() == [0 * 140 + 0, 99 * 140 + 2]


def test_event_bin_indices_rejects_bad_units():
    with pytest.raises(ValueError, match="unit ids"):
        event_bin_indices(
            np.array([0]), np.array([700]), time_bin_ms=10.0, num_steps=10, channel_bin=5
        )
