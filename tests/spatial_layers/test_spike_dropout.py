"""SpikeDropout and binary_saves: the same numbers as plain dropout and plain saving,
with bools where floats of two values were kept."""

import contextlib

import torch

from spatial_layers.functional import delayed_linear
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
    x = spikes((400, 2, 6), rng) * 2.5
    kernel = torch.randn(3, 6, 60, generator=rng, dtype=torch.float64, requires_grad=True)
    packed = []

    class Recording(_Packed):
        def __new__(cls, *args):
            packed.append(args[0].dtype)
            return super().__new__(cls, *args)

    grads = []
    for compact in (True, False):
        kernel.grad = None
        context = binary_saves(x, 2.5) if compact else contextlib.nullcontext()
        if compact:
            monkeypatch.setattr("spatial_layers.spike_dropout._Packed", Recording)
        with context:
            y = delayed_linear(x.requires_grad_(), kernel, method="fft")
        y.pow(2).sum().backward()
        grads.append((kernel.grad.clone(), x.grad.clone()))
        x.grad = None
    assert packed == [torch.bool]  # x, once; the kernel stays as it is
    for got, want in zip(*grads, strict=True):
        assert torch.equal(got, want)
