"""Batch norm + LIF fused: the same bits as the two modules one after the other (forward,
gradients, running statistics), with one (T, B, C) tensor saved instead of two."""

import pytest
import torch

from spatial_layers.networks.norm_leaky import TimeBatchNorm, normalized_spikes
from spatial_layers.neurons import Leaky

SHAPE = (50, 3, 7)


def currents_and_norm(rng, affine=True, dtype=torch.float32):
    currents = torch.randn(SHAPE, generator=rng, dtype=dtype) * 2 + 0.5
    norm = TimeBatchNorm(SHAPE[-1], affine=affine).to(dtype)
    if affine:
        with torch.no_grad():
            norm.weight.uniform_(0.5, 2.0, generator=rng)
            norm.bias.uniform_(-0.5, 1.0, generator=rng)
    return currents, norm


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_equals_norm_then_leaky_bit_for_bit(affine, training, dtype, backend, rng):
    currents, norm = currents_and_norm(rng, affine, dtype)
    neuron = Leaky(0.9, 1.0, 2.0, backend=backend)
    weights = torch.randn(SHAPE, generator=rng, dtype=dtype)
    results = []
    for fused in (True, False):
        model = TimeBatchNorm(SHAPE[-1], affine=affine).to(dtype)
        model.load_state_dict(norm.state_dict())
        model.train(training)
        x = currents.clone().requires_grad_()
        spikes = normalized_spikes(model, neuron, x) if fused else neuron(model(x))
        params = [x, *model.parameters()]
        grads = torch.autograd.grad((spikes * weights).sum(), params)
        results.append((spikes, *grads, *model.buffers()))
    assert results[0][0].mean() > 0
    for got, want in zip(*results, strict=True):
        assert torch.equal(got, want)


def test_fused_saves_only_the_norm_input_in_the_time_shape(rng):
    """The (T, B, C) tensors autograd keeps between forward and backward."""
    currents, norm = currents_and_norm(rng)
    neuron = Leaky()
    kept = {}
    for fused in (True, False):
        saved = []

        def pack(tensor, saved=saved):
            saved.append(tensor)
            return tensor

        x = currents.clone().requires_grad_()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            spikes = normalized_spikes(norm, neuron, x) if fused else neuron(norm(x))
        # For each (T, B, C) tensor kept: whether it is x itself.
        kept[fused] = [t.data_ptr() == x.data_ptr() for t in saved if t.numel() == x.numel()]
        spikes.sum().backward()
    assert kept == {True: [True], False: [True, False]}  # not the membrane trace


def test_compiled_fused_is_the_plain_composition(monkeypatch, rng):
    currents, norm = currents_and_norm(rng)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    spikes = normalized_spikes(norm, Leaky(), currents.requires_grad_())
    assert "NormLeaky" not in type(spikes.grad_fn).__name__


def test_fused_equals_norm_then_leaky_on_the_device(device, rng):
    """The batch-norm implementation a device picks (cuDNN on CUDA) is recomputed alike."""
    currents, norm = currents_and_norm(rng)
    results = []
    for fused in (True, False):
        model = TimeBatchNorm(SHAPE[-1]).to(device)
        model.load_state_dict(norm.state_dict())
        x = currents.to(device).requires_grad_()
        neuron = Leaky()
        spikes = normalized_spikes(model, neuron, x) if fused else neuron(model(x))
        grads = torch.autograd.grad(spikes.sum(), [x, *model.parameters()])
        results.append((spikes, *grads, *model.buffers()))
    for got, want in zip(*results, strict=True):
        assert torch.equal(got, want)
