"""A recurrent HiddenPopulation: hidden -> hidden delays, against a loop over SpatialDelay.step."""

import os

import pytest
import torch
from torch import nn

from spatial_layers import (
    HiddenPopulation,
    Leaky,
    NeuronPositions,
    SpatialDelay,
    leaky_step,
)


def recurrent_population(feedforward, recurrent, params=None, *, backend="auto"):
    """A recurrent hidden population (the block these tests were written for)."""
    neuron = Leaky(*(params or ()), backend=backend)
    return HiddenPopulation(feedforward, neuron, recurrent=recurrent)


def naive_recurrent(model: HiddenPopulation, x: torch.Tensor):
    """The same network written with the recurrent layer's own streaming step()."""
    model.recurrent.reset_state()
    currents = model.synapses(x)
    spikes_prev = torch.zeros_like(currents[0])
    membrane = torch.zeros_like(currents[0])
    spikes, membranes = [], []
    for current in currents:
        feedback = model.recurrent.step(spikes_prev)
        spikes_prev, membrane = leaky_step(current + feedback, membrane, model.neuron.params)
        spikes.append(spikes_prev)
        membranes.append(membrane)
    model.recurrent.reset_state()
    return torch.stack(spikes), torch.stack(membranes)


def build(
    mode: str = "spatial", kernel: str = "gauss", hidden: int = 8, backend: str = "auto"
) -> HiddenPopulation:
    pos_in, pos_hid = (
        NeuronPositions(5, dim=2, scale=3.0),
        NeuronPositions(hidden, dim=2, scale=3.0),
    )
    feedforward = SpatialDelay(pos_in, pos_hid, max_delay=4, kernel=kernel)
    recurrent = SpatialDelay(pos_hid, pos_hid, max_delay=4, kernel=kernel, delays=mode, bias=True)
    with torch.no_grad():
        feedforward.weight.mul_(5.0)
        recurrent.weight.mul_(2.0)
    return recurrent_population(feedforward, recurrent, (0.85,), backend=backend)


@pytest.mark.parametrize("mode", ["spatial", "free", "none"])
@pytest.mark.parametrize("kernel", ["gauss", "linear", "round"])
def test_equals_naive_loop_over_step(mode, kernel, rng):
    torch.manual_seed(0)
    model = build(mode, kernel)
    x = (torch.rand(30, 3, 5, generator=rng) < 0.3).float()
    with torch.no_grad():
        spikes, membranes = model.forward_with_membrane(x)
        ref_spikes, ref_membranes = naive_recurrent(model, x)
    assert spikes.shape == membranes.shape == (30, 3, 8)
    assert spikes.sum() > 10
    assert torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(membranes, ref_membranes, rtol=0, atol=1e-6)
    assert torch.equal(model(x), spikes)


def test_gradients_match_naive_loop(backend, rng):
    """On either backend of the fused loop (CPU: Triton runs in its interpreter)."""
    if backend == "triton" and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("the naive loop runs on CPU; recurrent_fused tests cover CUDA")
    torch.manual_seed(1)
    model = build("spatial", "gauss", backend=backend)
    x = (torch.rand(15, 2, 5, generator=rng) < 0.3).float()
    probe = torch.randn(15, 2, 8, generator=rng)
    with torch.no_grad():
        spikes, membranes = model.forward_with_membrane(x)
        ref_spikes, ref_membranes = naive_recurrent(model, x)
    assert torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(membranes, ref_membranes, rtol=0, atol=1e-6)

    def grads(run):
        model.zero_grad()
        spikes, membranes = run(x)
        ((spikes + membranes) * probe).sum().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    ours = grads(model.forward_with_membrane)
    reference = grads(lambda x: naive_recurrent(model, x))
    assert ours.keys() == reference.keys()
    for name, grad in ours.items():
        assert torch.isfinite(grad).all(), name  # self-synapses sit at distance 0
        torch.testing.assert_close(grad, reference[name], rtol=1e-4, atol=1e-5, msg=name)
    assert ours["recurrent.weight"].abs().sum() > 0
    # The hidden positions are shared: one parameter, reached by both layers.
    assert ours["synapses.post.coords"].abs().sum() > 0


def two_neuron_chain(k: int, mode: str) -> HiddenPopulation:
    """Input drives neuron 0 only; neuron 0 drives neuron 1 through a recurrent delay of k."""
    feedforward = SpatialDelay(1, 2, max_delay=0, delays="none")
    if mode == "spatial":
        pos = NeuronPositions(2, dim=1)
        with torch.no_grad():
            pos.coords.copy_(torch.tensor([[0.0], [1.5 * k]]))
        recurrent = SpatialDelay(pos, pos, max_delay=6, velocity=1.5, kernel="linear")
    else:
        recurrent = SpatialDelay(2, 2, max_delay=6, kernel="linear", delays="free")
        with torch.no_grad():
            recurrent.free_delays.fill_(float(k))
    with torch.no_grad():
        feedforward.weight.copy_(torch.tensor([[2.0], [0.0]]))
        recurrent.weight.copy_(torch.tensor([[0.0, 0.0], [2.0, 0.0]]))
    return recurrent_population(feedforward, recurrent)


@pytest.mark.parametrize("k", [0, 1, 4, 6])
@pytest.mark.parametrize("mode", ["spatial", "free"])
def test_recurrent_delay_k_delivers_at_t_plus_one_plus_k(k, mode):
    model = two_neuron_chain(k, mode)
    assert model.recurrent.delays()[1, 0].item() == k
    x = torch.zeros(12, 1, 1)
    x[2] = 1.0
    spikes = model(x)
    assert spikes[:, 0, 0].nonzero().flatten().tolist() == [2]
    assert spikes[:, 0, 1].nonzero().flatten().tolist() == [2 + 1 + k]


def test_constructor_rejects_wrong_sizes():
    pos_hid = NeuronPositions(8)
    feedforward = SpatialDelay(NeuronPositions(5), pos_hid, max_delay=3)
    with pytest.raises(ValueError, match=r"map the population to itself \(8 -> 8\), got 8 -> 5"):
        recurrent_population(feedforward, SpatialDelay(pos_hid, 5, max_delay=3, delays="free"))
    with pytest.raises(ValueError, match="map the population to itself"):
        recurrent_population(feedforward, SpatialDelay(7, 7, max_delay=3, delays="free"))


def test_constructor_rejects_unshared_positions():
    pos_hid = NeuronPositions(8)
    feedforward = SpatialDelay(NeuronPositions(5), pos_hid, max_delay=3)
    with pytest.raises(ValueError, match="one NeuronPositions module"):
        recurrent_population(feedforward, SpatialDelay(8, 8, max_delay=3))  # two private modules
    other = NeuronPositions(8)
    with pytest.raises(ValueError, match="one NeuronPositions module"):
        recurrent_population(feedforward, SpatialDelay(other, other, max_delay=3))
    # Free or no recurrent delays do not use positions, so nothing to share.
    recurrent_population(feedforward, SpatialDelay(8, 8, max_delay=3, delays="free"))


def test_constructor_rejects_other_modules():
    pos_hid = NeuronPositions(8)
    feedforward = SpatialDelay(NeuronPositions(5), pos_hid, max_delay=3)
    with pytest.raises(TypeError, match="recurrent must be a SpatialDelay, got Linear"):
        recurrent_population(feedforward, nn.Linear(8, 8))
    with pytest.raises(TypeError, match="synapses must be a SpatialDelay"):
        recurrent_population(nn.Linear(5, 8), SpatialDelay(pos_hid, pos_hid, max_delay=3))


@pytest.mark.parametrize("flag", ["init_hidden", "batch_first"])
@pytest.mark.parametrize("role", ["synapses", "recurrent"])
def test_constructor_rejects_per_step_or_batch_first_layers(flag, role):
    layers = {
        "synapses": SpatialDelay(5, 8, max_delay=3, delays="free"),
        "recurrent": SpatialDelay(8, 8, max_delay=3, delays="free"),
    }
    layers[role] = SpatialDelay(
        *((5, 8) if role == "synapses" else (8, 8)), max_delay=3, delays="free", **{flag: True}
    )
    with pytest.raises(ValueError, match=f"{role} layer was built with {flag}=True"):
        recurrent_population(layers["synapses"], layers["recurrent"])


def test_recurrent_dtype_mismatch_is_caught():
    pos_hid = NeuronPositions(4)
    model = recurrent_population(
        SpatialDelay(3, pos_hid, max_delay=2),
        SpatialDelay(4, 4, max_delay=2, delays="free", dtype=torch.float64),
    )
    with pytest.raises(ValueError, match=r"input is torch\.float32"):
        model(torch.zeros(5, 2, 3))


def test_constructor_rejects_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        build(backend="cuda")


def test_rejects_bad_input():
    model = build()
    with pytest.raises(ValueError, match=r"\(T, B, C_in\) with C_in=5"):
        model(torch.zeros(5, 2, 4))
