"""SpikeDropout and binary_saves: the same numbers as plain dropout and plain saving,
with bools where floats of two values were kept."""

import contextlib

import pytest
import torch

from spatial_layers import functional
from spatial_layers.spike_dropout import SpikeDropout, _Packed, binary_saves


def spikes(shape, rng, rate=0.4, dtype=torch.float64):
    return (torch.rand(*shape, generator=rng) < rate).to(dtype)


def test_spike_dropout_is_dropout_with_a_bool_mask(rng):
    drop = SpikeDropout(0.25)
    x = spikes((50, 4, 30), rng).requires_grad_()
    torch.manual_seed(0)
    y = drop(x)
    kept = y.detach() != 0
    assert set(y.detach().unique().tolist()) <= {0.0, 4 / 3}
    assert torch.equal(y.detach()[kept], torch.full_like(y.detach()[kept], drop.scale))
    probe = torch.randn(50, 4, 30, generator=rng, dtype=torch.float64)
    (y * probe).sum().backward()
    # dL/dx = probe * scale where kept; where x was 0, the mask's own draw decides.
    assert torch.equal(x.grad[kept], (probe * drop.scale)[kept])
    assert set((x.grad / (probe * drop.scale)).unique().tolist()) <= {0.0, 1.0}
    assert 0.6 < (x.grad != 0).double().mean() < 0.9
    drop.eval()
    assert drop(x) is x
    assert SpikeDropout(0.0)(x) is x


def test_binary_saves_stores_bools_and_gives_the_same_gradients(monkeypatch, rng):
    x = spikes((40, 2, 6), rng) * 2.5
    weight = torch.randn(6, generator=rng, dtype=torch.float64, requires_grad=True)
    packed = []

    class Recording(_Packed):
        def __new__(cls, *args):
            packed.append(args[0].dtype)
            return super().__new__(cls, *args)

    grads = []
    for compact in (True, False):
        weight.grad = None
        context = binary_saves(x, 2.5) if compact else contextlib.nullcontext()
        if compact:
            monkeypatch.setattr("spatial_layers.spike_dropout._Packed", Recording)
        with context:
            y = torch.mul(x.requires_grad_(), weight)  # saves x (for weight) and weight
        y.pow(2).sum().backward()
        grads.append((weight.grad.clone(), x.grad.clone()))
        x.grad = None
    assert packed == [torch.bool]  # x, once; the weight stays as it is
    for got, want in zip(*grads, strict=True):
        assert torch.equal(got, want)


@pytest.mark.parametrize(("size", "block"), [(480, 400), (128, 69)])
def test_fft_path_saves_binary_input_as_bools_and_reads_it_by_batch_chunks(
    size, block, monkeypatch, rng
):
    """The FFT op keeps the declared input as bools itself; the one-block backward
    rebuilds it one batch chunk at a time; the gradients are those of a plain save."""
    x = spikes((400, 3, 6), rng) * 2.5
    kernel = torch.randn(4, 6, 60, generator=rng, dtype=torch.float64, requires_grad=True)
    monkeypatch.setattr(functional, "MIN_CHUNK_SPECTRUM", 1)  # chunks of one batch row
    read = []
    unpack = functional.unpack_binary
    monkeypatch.setattr(
        functional, "unpack_binary", lambda *args: read.append(args[0].shape) or unpack(*args)
    )
    grads = []
    for compact in (True, False):
        context = binary_saves(x, 2.5) if compact else contextlib.nullcontext()
        with context:
            y = functional.FFTDelayedLinear.apply(x.requires_grad_(), kernel, size, block)
        saved = {tensor.dtype for tensor in y.grad_fn.saved_tensors if tensor.shape == x.shape}
        assert saved == ({torch.bool} if compact else {torch.float64})
        grads.append(torch.autograd.grad(y.pow(2).sum(), (x, kernel)))
    whole = [(400, 1, 6)] * 3
    assert read == (whole if block == 400 else [x.shape])
    for got, want in zip(*grads, strict=True):
        assert torch.equal(got, want)
