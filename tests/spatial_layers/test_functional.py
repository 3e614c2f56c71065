"""The pure delayed-synapse operators against a naive numpy loop."""

import numpy as np
import pytest
import torch

from spatial_layers import DelayState, delayed_linear, delayed_step


def naive_delayed_linear(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """y[t, b, i] = sum_j sum_k kernel[i, j, k] * x[t - k, b, j] (+ bias[i]), x = 0 before t = 0."""
    steps, batch, _ = x.shape
    c_out, c_in, taps = kernel.shape
    y = np.zeros((steps, batch, c_out))
    for t in range(steps):
        for i in range(c_out):
            for j in range(c_in):
                for k in range(min(taps, t + 1)):
                    y[t, :, i] += kernel[i, j, k] * x[t - k, :, j]
    if bias is not None:
        y += bias
    return y


@pytest.mark.parametrize("taps", [1, 2, 5, 12])
@pytest.mark.parametrize("with_bias", [False, True])
def test_delayed_linear_matches_naive_loop(taps, with_bias, rng):
    x = torch.randn(9, 3, 4, generator=rng, dtype=torch.float64)
    kernel = torch.randn(5, 4, taps, generator=rng, dtype=torch.float64)
    bias = torch.randn(5, generator=rng, dtype=torch.float64) if with_bias else None
    y = delayed_linear(x, kernel, bias)
    expected = naive_delayed_linear(
        x.numpy(), kernel.numpy(), None if bias is None else bias.numpy()
    )
    assert y.shape == (9, 3, 5)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_delayed_linear_float32_matches_naive_loop(rng):
    x = (torch.rand(30, 2, 6, generator=rng) < 0.3).float()
    kernel = torch.randn(3, 6, 8, generator=rng)
    expected = naive_delayed_linear(x.double().numpy(), kernel.double().numpy(), None)
    np.testing.assert_allclose(delayed_linear(x, kernel).numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("taps", [1, 4])
def test_delayed_linear_is_causal(taps, rng):
    x = torch.randn(10, 2, 3, generator=rng)
    kernel = torch.randn(4, 3, taps, generator=rng)
    y = delayed_linear(x, kernel)
    for t in range(10):
        changed = x.clone()
        changed[t + 1 :] = torch.randn(changed[t + 1 :].shape, generator=rng) * 100
        y_changed = delayed_linear(changed, kernel)
        assert torch.equal(y_changed[: t + 1], y[: t + 1])


def test_delayed_linear_shorter_sequence_than_kernel(rng):
    x = torch.randn(3, 2, 2, generator=rng, dtype=torch.float64)
    kernel = torch.randn(2, 2, 8, generator=rng, dtype=torch.float64)
    expected = naive_delayed_linear(x.numpy(), kernel.numpy(), None)
    np.testing.assert_allclose(delayed_linear(x, kernel).numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("taps", [1, 3, 7])
def test_delayed_step_loop_equals_sequence(taps, rng):
    x = torch.randn(12, 2, 4, generator=rng, dtype=torch.float64)
    kernel = torch.randn(3, 4, taps, generator=rng, dtype=torch.float64)
    bias = torch.randn(3, generator=rng, dtype=torch.float64)
    state = None
    outputs = []
    for x_t in x:
        y_t, state = delayed_step(x_t, kernel, state, bias)
        outputs.append(y_t)
    assert isinstance(state, DelayState)
    assert state.history.shape == (2, 4, taps)
    # The history holds the last `taps` inputs, newest first.
    assert torch.equal(state.history[..., 0], x[-1])
    assert torch.equal(state.history[..., -1], x[-taps])
    torch.testing.assert_close(torch.stack(outputs), delayed_linear(x, kernel, bias))


def test_delayed_linear_gradcheck(rng):
    x = torch.randn(5, 2, 3, generator=rng, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(2, 3, 4, generator=rng, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, generator=rng, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(delayed_linear, (x, kernel, bias))


def test_delayed_step_gradcheck(rng):
    x_t = torch.randn(2, 3, generator=rng, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(2, 3, 4, generator=rng, dtype=torch.float64, requires_grad=True)
    history = torch.randn(2, 3, 4, generator=rng, dtype=torch.float64, requires_grad=True)

    def one_step(x_t, kernel, history):
        y_t, state = delayed_step(x_t, kernel, DelayState(history))
        return y_t, state.history

    assert torch.autograd.gradcheck(one_step, (x_t, kernel, history))
