"""The pure delayed-synapse operators against a naive numpy loop, and the spectral paths of
delayed_linear (fft, dft) against the dense causal convolution."""

import numpy as np
import pytest
import torch

from spatial_layers import DelayState, delayed_linear, delayed_step
from spatial_layers.functional import (
    FFTDelayedLinear,
    _smooth_size,
    interpolated_kernel,
    plan_delayed_linear,
)
from spatial_layers.kernels import delay_kernel


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


# --- the spectral paths (fft, dft) -------------------------------------------------------------

# (T, B, C_in, C_out, K): odd sizes, T < K, T == 1, one and several blocks.
SHAPES = [(1, 1, 1, 1, 2), (3, 2, 2, 3, 8), (9, 3, 4, 5, 4), (37, 2, 3, 7, 11), (64, 1, 5, 2, 33)]


def dense_and_fft(x, kernel, bias, grad, spectral="fft", **fft_plan):
    """Values and gradients of dense and a spectral path (fft_plan: explicit size/block)."""
    results = []
    for method in ("dense", spectral):
        inputs = [t.detach().clone().requires_grad_() for t in (x, kernel, bias)]
        if method == "fft" and fft_plan:
            y = FFTDelayedLinear.apply(inputs[0], inputs[1], fft_plan["size"], fft_plan["block"])
            y = y + inputs[2]
        else:
            y = delayed_linear(*inputs, method=method)
        y.backward(grad)
        results.append([y.detach(), *(t.grad for t in inputs)])
    return results


def assert_paths_agree(dense, fft, tol):
    for name, ref, got in zip(("y", "grad x", "grad kernel", "grad bias"), dense, fft, strict=True):
        scale = ref.abs().max().clamp_min(1.0)
        err = (got - ref).abs().max() / scale
        assert err <= tol, f"{name}: relative error {err:.2e} > {tol:.0e}"


@pytest.mark.parametrize("spectral", ["fft", "dft"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_spectral_equals_dense_values_and_gradients(spectral, shape, dtype, tol, rng):
    steps, batch, c_in, c_out, taps = shape
    x = (torch.rand(steps, batch, c_in, generator=rng) < 0.3).to(dtype)
    kernel = torch.randn(c_out, c_in, taps, generator=rng, dtype=dtype)
    bias = torch.randn(c_out, generator=rng, dtype=dtype)
    grad = torch.randn(steps, batch, c_out, generator=rng, dtype=dtype)
    assert_paths_agree(*dense_and_fft(x, kernel, bias, grad, spectral), tol)


@pytest.mark.parametrize("block", [1, 2, 5, 13, 40])
def test_overlap_save_blocks_equal_dense(block, rng):
    """Every block length (and a transform longer than needed) gives the dense numbers."""
    steps, batch, c_in, c_out, taps = 40, 2, 3, 4, 6
    x = torch.randn(steps, batch, c_in, generator=rng, dtype=torch.float64)
    kernel = torch.randn(c_out, c_in, taps, generator=rng, dtype=torch.float64)
    bias = torch.randn(c_out, generator=rng, dtype=torch.float64)
    grad = torch.randn(steps, batch, c_out, generator=rng, dtype=torch.float64)
    for size in (block + taps - 1, _smooth_size(block + taps + 3)):
        results = dense_and_fft(x, kernel, bias, grad, size=size, block=block)
        assert_paths_agree(*results, 1e-10)


@pytest.mark.parametrize("spectral", ["fft", "dft"])
@pytest.mark.parametrize("kind", ["gauss", "linear", "round"])
def test_spectral_equals_dense_through_every_kernel(spectral, kind, rng):
    """Gradients reach weights and delays identically through all three kernel shapes."""
    max_delay, c_in, c_out = 9, 5, 3
    x = (torch.rand(30, 2, c_in, generator=rng) < 0.4).double()
    weight0 = torch.randn(c_out, c_in, generator=rng, dtype=torch.float64)
    delays0 = torch.rand(c_out, c_in, generator=rng, dtype=torch.float64) * max_delay
    probe = torch.randn(30, 2, c_out, generator=rng, dtype=torch.float64)
    grads = {}
    for method in ("dense", spectral):
        weight = weight0.clone().requires_grad_()
        delays = delays0.clone().requires_grad_()
        kernel = weight[..., None] * delay_kernel(delays, max_delay, kind, sigma=1.5)
        y = delayed_linear(x, kernel, method=method)
        (y * probe).sum().backward()
        grads[method] = (y.detach(), weight.grad, delays.grad)
    for ref, got in zip(grads["dense"], grads[spectral], strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("size", "block"), [(8, 4), (16, 12), (16, 3)])
def test_fft_gradcheck(size, block, rng):
    x = torch.randn(11, 2, 3, generator=rng, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(2, 3, 4, generator=rng, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, k: FFTDelayedLinear.apply(x, k, size, block), (x, kernel)
    )


@pytest.mark.parametrize("spectral", ["fft", "dft"])
def test_spectral_gradcheck_through_plan(spectral, rng):
    x = torch.randn(20, 2, 3, generator=rng, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(4, 3, 7, generator=rng, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, generator=rng, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, k, b: delayed_linear(x, k, b, method=spectral), (x, kernel, bias)
    )


@pytest.mark.parametrize("spectral", ["fft", "dft"])
def test_spectral_is_causal_up_to_rounding(spectral, rng):
    x = torch.randn(50, 2, 3, generator=rng, dtype=torch.float64)
    kernel = torch.randn(4, 3, 6, generator=rng, dtype=torch.float64)
    y = delayed_linear(x, kernel, method=spectral)
    changed = x.clone()
    changed[30:] += 100.0
    y_changed = delayed_linear(changed, kernel, method=spectral)
    torch.testing.assert_close(y_changed[:30], y[:30], rtol=0, atol=1e-9)
    assert not torch.allclose(y_changed[30:], y[30:])


def test_plan_choices():
    assert plan_delayed_linear(10, 2, 3, 4, 1).method == "linear"
    assert plan_delayed_linear(10, 2, 3, 4, 4).method == "dense"  # tiny: conv wins
    shd = plan_delayed_linear(100, 256, 256, 256, 25)
    assert shd.method == "dft" and shd.fft_size >= 100 + 25 - 1 and shd.block == 100
    long = plan_delayed_linear(1000, 16, 256, 256, 251)
    assert long.method == "fft" and long.fft_size >= long.block + 251 - 1
    assert plan_delayed_linear(100, 256, 256, 256, 25, "dense").method == "dense"
    forced = plan_delayed_linear(10, 2, 3, 4, 4, "fft")
    assert forced.method == "fft" and forced.fft_size >= forced.block + 3


def test_fft_rejects_a_transform_too_short_for_its_block():
    with pytest.raises(ValueError, match="transform length"):
        FFTDelayedLinear.apply(torch.zeros(5, 1, 2), torch.zeros(3, 2, 4), 8, 6)


def test_plan_rejects_bad_method():
    with pytest.raises(ValueError, match="method must be one of"):
        plan_delayed_linear(10, 2, 3, 4, 4, "sparse")
    with pytest.raises(ValueError, match="single tap"):
        plan_delayed_linear(10, 2, 3, 4, 4, "linear")


def test_smooth_size():
    assert [_smooth_size(n) for n in (1, 7, 11, 124, 1249)] == [1, 8, 12, 125, 1250]


@pytest.mark.parametrize("spectral", ["fft", "dft"])
def test_bf16_autocast_runs_spectral_paths_in_float32(spectral, rng):
    """Under CPU bf16 autocast the spectral paths compute in float32 and stay close."""
    x = (torch.rand(40, 3, 8, generator=rng) < 0.3).float()
    kernel = torch.randn(5, 8, 12, generator=rng, requires_grad=True)
    reference = delayed_linear(x, kernel, method=spectral)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = delayed_linear(x, kernel, method=spectral)
        y_bf16 = delayed_linear(x.bfloat16(), kernel.bfloat16(), method=spectral)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, reference)
    assert y_bf16.dtype == torch.bfloat16
    torch.testing.assert_close(y_bf16.float(), reference, rtol=2e-2, atol=5e-2)
    y_bf16.float().sum().backward()
    assert kernel.grad is not None and torch.isfinite(kernel.grad).all()


@pytest.mark.parametrize("spectral", ["fft", "dft"])
def test_no_grad_and_partial_grad(spectral, rng):
    x = torch.randn(30, 2, 3, generator=rng)
    kernel = torch.randn(4, 3, 9, generator=rng, requires_grad=True)
    with torch.no_grad():
        y = delayed_linear(x, kernel, method=spectral)
    assert not y.requires_grad
    delayed_linear(x, kernel, method=spectral).sum().backward()  # x needs no gradient
    expected = torch.autograd.grad(delayed_linear(x, kernel, method="dense").sum(), kernel)[0]
    torch.testing.assert_close(kernel.grad, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kind", ["linear", "round"])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_interpolated_kernel_equals_kernels_module(kind, dtype, tol, rng):
    max_delay = 9
    delays0 = torch.rand(5, 7, generator=rng).to(dtype) * max_delay
    delays0[0, :4] = torch.tensor([0.0, 3.5, 2.0, float(max_delay)], dtype=dtype)
    weight0 = torch.randn(5, 7, generator=rng).to(dtype)
    probe = torch.randn(5, 7, max_delay + 1, generator=rng).to(dtype)
    results = []
    for build in (
        lambda w, d: w[..., None] * delay_kernel(d, max_delay, kind, sigma=1.0),
        lambda w, d: interpolated_kernel(w, d, max_delay, kind),
    ):
        weight, delays = weight0.clone().requires_grad_(), delays0.clone().requires_grad_()
        kernel = build(weight, delays)
        (kernel * probe).sum().backward()
        results.append((kernel.detach(), weight.grad, delays.grad))
    assert torch.equal(results[0][0], results[1][0])  # values bit for bit
    for ref, got in zip(results[0][1:], results[1][1:], strict=True):
        torch.testing.assert_close(got, ref, rtol=tol, atol=tol)


def test_interpolated_kernel_rejects_gauss():
    with pytest.raises(ValueError, match="linear' or 'round"):
        interpolated_kernel(torch.ones(1, 1), torch.zeros(1, 1), 3, "gauss")


def test_interpolated_kernel_gradcheck(rng):
    weight = torch.randn(3, 4, generator=rng, dtype=torch.float64, requires_grad=True)
    # Away from integers: the linear kernel is smooth there.
    delays = (
        torch.randint(0, 5, (3, 4), generator=rng) + 0.2 + 0.6 * torch.rand(3, 4, generator=rng)
    )
    delays = delays.double().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda w, d: interpolated_kernel(w, d, 6, "linear"), (weight, delays)
    )


@pytest.mark.parametrize("batch", [5, 7])
def test_one_block_fft_in_batch_chunks_equals_dense(batch, monkeypatch, rng):
    """With a tiny chunk budget the one-block path runs 1-3 batch rows at a time
    (and a last, shorter chunk): values and both gradients stay the dense ones."""
    import spatial_layers.functional as functional

    monkeypatch.setattr(functional, "MIN_CHUNK_SPECTRUM", 1)
    steps, c_in, c_out, taps = 30, 3, 4, 5
    size = _smooth_size(steps + taps - 1)
    assert functional._batch_rows(batch, size // 2 + 1, c_in, c_out * c_in * taps) < batch
    x = torch.randn(steps, batch, c_in, generator=rng, dtype=torch.float64)
    kernel = torch.randn(c_out, c_in, taps, generator=rng, dtype=torch.float64)
    bias = torch.randn(c_out, generator=rng, dtype=torch.float64)
    grad = torch.randn(steps, batch, c_out, generator=rng, dtype=torch.float64)
    results = dense_and_fft(x, kernel, bias, grad, size=size, block=steps)
    assert_paths_agree(*results, 1e-10)
