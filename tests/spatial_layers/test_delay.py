"""SpatialDelay: exact delays, modes, layouts, gradients and error messages (per-step calls:
test_streaming)."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spatial_layers import (
    NeuronPositions,
    SpatialDelay,
    delay_layers,
    delayed_linear,
    use_kernel,
)
from spatial_layers.delay import max_delay_limit
from spatial_layers.finite import NonFiniteInputError
from tests.helpers.delay import KERNELS, MODES, twin


def single_synapse(delay: float, kernel: str, max_delay: int = 8, **kwargs) -> SpatialDelay:
    """A 1 -> 1 layer with weight 1 and the given free delay."""
    layer = SpatialDelay(1, 1, max_delay=max_delay, kernel=kernel, delays="free", **kwargs)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.free_delays.fill_(delay)
    return layer


def impulse(steps: int = 12, at: int = 1) -> torch.Tensor:
    x = torch.zeros(steps, 1, 1)
    x[at] = 1.0
    return x


def shifted(steps: int, at: int) -> torch.Tensor:
    return impulse(steps, at)


def spike_pair(positions_1d: tuple[float, float], **kwargs) -> SpatialDelay:
    """One presynaptic and one postsynaptic neuron on a line at the given coordinates."""
    pre, post = NeuronPositions(1, dim=1), NeuronPositions(1, dim=1)
    with torch.no_grad():
        pre.coords.fill_(positions_1d[0])
        post.coords.fill_(positions_1d[1])
    layer = SpatialDelay(pre, post, **kwargs)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    return layer


# --- exact delays -------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 1, 3, 8])
@pytest.mark.parametrize("kernel", ["linear", "round"])
def test_integer_delay_shifts_spike_exactly(kernel, k):
    y = single_synapse(float(k), kernel)(impulse(at=1))
    assert torch.equal(y, shifted(12, 1 + k))


@pytest.mark.parametrize("k", [0, 1, 3, 8])
def test_integer_delay_gauss_tiny_sigma(k):
    y = single_synapse(float(k), "gauss", sigma=0.05)(impulse(at=1))
    torch.testing.assert_close(y, shifted(12, 1 + k), atol=1e-6, rtol=0)


@pytest.mark.parametrize("k", [0, 2, 5])
@pytest.mark.parametrize("kernel", ["linear", "round"])
def test_spatial_delay_from_distance_shifts_spike(kernel, k):
    # Neurons k * velocity apart on a line: a delay of exactly k steps.
    layer = spike_pair((1.0, 1.0 + 2.0 * k), max_delay=6, velocity=2.0, kernel=kernel)
    assert layer.delays().item() == k
    assert torch.equal(layer(impulse(at=2)), shifted(12, 2 + k))


@pytest.mark.parametrize("k", [0, 3, 7])
def test_half_step_delay_splits_linear(k):
    y = single_synapse(k + 0.5, "linear")(impulse(at=2))
    expected = 0.5 * shifted(12, 2 + k) + 0.5 * shifted(12, 3 + k)
    assert torch.equal(y, expected)


def test_delay_beyond_max_is_clamped_and_delivered_at_max():
    y = single_synapse(30.0, "linear", max_delay=4)(impulse(at=1))
    assert torch.equal(y, shifted(12, 5))


JUST_BELOW_HALF = float(np.nextafter(np.float32(0.5), np.float32(0)))  # + 0.5 rounds to 1.0


@pytest.mark.parametrize(
    ("delay", "k"),
    [(2.49, 2), (2.5, 3), (2.51, 3), (0.49, 0), (0.5, 1), (JUST_BELOW_HALF, 0)],
)
def test_round_kernel_rounds_half_up(delay, k):
    assert torch.equal(single_synapse(delay, "round")(impulse(at=0)), shifted(12, k))


def test_no_delays_equals_linear_per_step(rng):
    layer = SpatialDelay(5, 3, max_delay=6, kernel="gauss", delays="none", bias=True)
    x = torch.randn(7, 4, 5, generator=rng)
    expected = torch.stack([F.linear(x_t, layer.weight, layer.bias) for x_t in x])
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(layer.delays(), torch.zeros(3, 5))


@pytest.mark.parametrize("kernel", KERNELS)
def test_no_delays_kernel_sits_on_tap_zero(kernel):
    layer = SpatialDelay(4, 3, max_delay=5, kernel=kernel, delays="none")
    full = layer.kernel()
    assert full.shape == (3, 4, 6)
    assert torch.equal(full[..., 0], layer.weight.detach())
    assert torch.equal(full[..., 1:], torch.zeros(3, 4, 5))


# --- sequence call against references ---------------------------------------------------------


def naive_layer(
    x: np.ndarray, weight: np.ndarray, delays: np.ndarray, max_delay: int
) -> np.ndarray:
    """Linear-kernel reference: each spike split over floor(d) and floor(d) + 1, by loops."""
    steps, batch, c_in = x.shape
    c_out = weight.shape[0]
    y = np.zeros((steps, batch, c_out))
    for i in range(c_out):
        for j in range(c_in):
            d = delays[i, j]
            lower, frac = int(np.floor(d)), d - np.floor(d)
            for tap, share in ((lower, 1 - frac), (lower + 1, frac)):
                if tap > max_delay:
                    continue
                for t in range(tap, steps):
                    y[t, :, i] += weight[i, j] * share * x[t - tap, :, j]
    return y


@pytest.mark.parametrize("mode", ["spatial", "free"])
def test_forward_matches_naive_reference(mode, rng):
    layer = SpatialDelay(4, 3, max_delay=5, kernel="linear", delays=mode, dtype=torch.float64)
    x = (torch.rand(15, 2, 4, generator=rng, dtype=torch.float64) < 0.4).double()
    expected = naive_layer(
        x.numpy(), layer.weight.detach().numpy(), layer.delays().detach().numpy(), 5
    )
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_forward_is_convolution_with_kernel(mode, kernel, rng):
    layer = SpatialDelay(4, 3, max_delay=5, kernel=kernel, delays=mode, bias=True)
    x = torch.randn(9, 2, 4, generator=rng)
    expected = delayed_linear(x, layer.kernel(), layer.bias)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_forward_is_causal(mode, rng):
    layer = SpatialDelay(3, 2, max_delay=4, delays=mode)
    x = torch.rand(10, 2, 3, generator=rng)
    y = layer(x)
    for t in range(9):
        changed = x.clone()
        changed[t + 1 :] += 5.0
        assert torch.equal(layer(changed)[: t + 1], y[: t + 1])


def test_forward_is_causal_at_training_size(rng):
    # At SHD-like shapes the sequence call may mix time steps inside blocks
    # (FFT); the past must still not hear the future beyond float rounding.
    layer = SpatialDelay(140, 64, max_delay=25, kernel="gauss")
    x = (torch.rand(80, 16, 140, generator=rng) < 0.1).float()
    changed = x.clone()
    changed[40:] = (torch.rand(40, 16, 140, generator=rng) < 0.5).float()
    with torch.no_grad():
        y, y_changed = layer(x), layer(changed)
    torch.testing.assert_close(y_changed[:40], y[:40], rtol=0, atol=1e-6)
    assert not torch.allclose(y_changed[40:], y[40:])


def test_max_delay_zero_is_instantaneous(rng):
    layer = SpatialDelay(3, 2, max_delay=0, kernel="gauss", delays="none")
    x = torch.rand(5, 2, 3, generator=rng)
    assert layer.kernel().shape == (2, 3, 1)
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("mode", "learned"), [("spatial", "coordinates"), ("free", "free delays")])
def test_max_delay_zero_refused_where_delays_are_learned(mode, learned):
    # All delays would clamp to 0: coordinates (or free delays) that never learn.
    with pytest.raises(ValueError, match=f"max_delay=0 .* the {learned} would get no gradient"):
        SpatialDelay(3, 2, max_delay=0, delays=mode)


def test_sigma_is_settable_and_changes_kernel():
    layer = single_synapse(3.0, "gauss", max_delay=6)
    wide = layer.kernel().detach().clone()
    layer.sigma = 0.3
    # Stored in the layer's dtype (a float32 buffer): the width the forward computes with.
    assert layer.sigma == torch.tensor(0.3, dtype=torch.float32).item()
    assert layer.state_dict()["kernel_sigma"] == layer.kernel_sigma
    narrow = layer.kernel().detach()
    assert narrow[0, 0, 3] > wide[0, 0, 3]
    torch.testing.assert_close(narrow.sum(), torch.tensor(1.0), atol=1e-6, rtol=0)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            layer.sigma = bad


def test_mask_and_sign_shape_the_effective_weight():
    layer = SpatialDelay(3, 2, max_delay=3, delays="free")
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]]))
    layer.mask[0, 1] = False
    assert torch.equal(layer.effective_weight(), torch.tensor([[1.0, 0.0, 3.0], [-4.0, 5.0, -6.0]]))
    layer.sign = torch.tensor([1.0, -1.0, 1.0])
    assert torch.equal(layer.effective_weight(), torch.tensor([[1.0, 0.0, 3.0], [4.0, -5.0, 6.0]]))
    # The forward pass applies the effective weight, not the raw one.
    torch.testing.assert_close(layer.kernel().sum(-1), layer.effective_weight())


def test_masked_synapse_has_no_effect(rng):
    layer = SpatialDelay(3, 2, max_delay=3, kernel="linear")
    layer.mask[1, 2] = False
    x = torch.rand(6, 2, 3, generator=rng)
    before = layer(x).detach()
    with torch.no_grad():
        layer.weight[1, 2] += 100.0
    assert torch.equal(layer(x).detach(), before)


def test_private_positions_and_submodules():
    layer = SpatialDelay(7, 5, max_delay=4, dim=3)
    assert isinstance(layer.pre, NeuronPositions) and isinstance(layer.post, NeuronPositions)
    assert layer.pre.coords.shape == (7, 3) and layer.post.coords.shape == (5, 3)
    assert layer.weight.shape == (5, 7)
    names = {name for name, _ in layer.named_parameters()}
    assert names == {"weight", "pre.coords", "post.coords"}
    free = SpatialDelay(7, 5, max_delay=4, delays="free")
    assert {n for n, _ in free.named_parameters()} == {"weight", "free_delays"}
    assert free.free_delays.min() >= 0 and free.free_delays.max() <= 4
    none = SpatialDelay(7, 5, max_delay=4, delays="none", bias=True)
    assert {n for n, _ in none.named_parameters()} == {"weight", "bias"}


def test_repr_names_the_configuration():
    text = repr(SpatialDelay(4, 3, max_delay=5, kernel="gauss", velocity=2.0))
    for part in ("in_features=4", "out_features=3", "max_delay=5", "'spatial'", "'gauss'"):
        assert part in text


def test_moves_with_to_and_state_dict_roundtrip(rng):
    layer = SpatialDelay(3, 2, max_delay=3).double()
    assert layer.pre.coords.dtype == torch.float64
    assert layer.mask.dtype == torch.bool
    x = torch.rand(5, 1, 3, generator=rng, dtype=torch.float64)
    copy = SpatialDelay(3, 2, max_delay=3, dtype=torch.float64)
    copy.load_state_dict(layer.state_dict())
    assert torch.equal(copy(x), layer(x))


# --- batch-first layouts, and a step or a sequence to a layer built for the other -------------


@pytest.mark.parametrize("mode", MODES)
def test_batch_first_is_the_time_major_call_transposed(mode, rng):
    layer = SpatialDelay(5, 4, max_delay=6, delays=mode, bias=True)
    batch_first = twin(layer, batch_first=True)
    x = torch.rand(3, 20, 5, generator=rng)  # (B, T, C_in), as tonic's PadTensors() gives
    y = batch_first(x)
    assert y.shape == (3, 20, 4)
    assert torch.equal(y, layer(x.transpose(0, 1)).transpose(0, 1))


@pytest.mark.parametrize(
    ("flags", "shape", "message"),
    [
        ({}, (2, 4), r"\(T, B, C_in\) .* got \(2, 4\); .*init_hidden=True .*layer\.step"),
        ({"batch_first": True}, (2, 4), r"\(B, T, C_in\) .* got \(2, 4\); .*init_hidden=True"),
        ({"init_hidden": True}, (5, 2, 4), r"\(B, C_in\) .* got \(5, 2, 4\); .*init_hidden=False"),
    ],
)
def test_a_step_to_a_sequence_layer_or_back_names_the_other_mode(flags, shape, message):
    layer = SpatialDelay(4, 3, max_delay=2, **flags)
    with pytest.raises(ValueError, match=message):
        layer(torch.zeros(shape))


def test_step_on_a_sequence_names_the_sequence_call():
    with pytest.raises(ValueError, match="call the layer itself on whole sequences"):
        SpatialDelay(4, 3, max_delay=2).step(torch.zeros(5, 2, 4))


def test_init_hidden_and_batch_first_together_are_refused():
    with pytest.raises(ValueError, match=r"batch_first=True .* init_hidden=True"):
        SpatialDelay(4, 3, max_delay=2, init_hidden=True, batch_first=True)


def test_repr_names_the_layout_flags():
    assert "init_hidden=True" in repr(SpatialDelay(4, 3, max_delay=2, init_hidden=True))
    assert "batch_first=True" in repr(SpatialDelay(4, 3, max_delay=2, batch_first=True))
    assert "init_hidden" not in repr(SpatialDelay(4, 3, max_delay=2))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_torch_jit_script_names_compile_and_export():
    net = torch.nn.Sequential(SpatialDelay(4, 3, max_delay=2))
    with pytest.raises(TypeError, match=r"torch\.compile.*torch\.export"):
        torch.jit.script(net)


# --- gradients ---------------------------------------------------------------------------------


def gradcheck_layer(layer: SpatialDelay, rng: torch.Generator) -> None:
    """gradcheck of the layer's output with respect to every one of its parameters."""
    x = torch.rand(6, 2, layer.in_features, generator=rng, dtype=torch.float64)
    names = [name for name, _ in layer.named_parameters()]
    values = tuple(p.detach().clone().requires_grad_() for p in layer.parameters())

    def call(*values):
        return torch.func.functional_call(layer, dict(zip(names, values, strict=True)), (x,))

    assert torch.autograd.gradcheck(call, values)


@pytest.mark.parametrize("kernel", ["gauss", "linear"])
def test_gradcheck_spatial(kernel, rng):
    layer = SpatialDelay(3, 2, max_delay=5, kernel=kernel, bias=True, dtype=torch.float64)
    with torch.no_grad():
        layer.pre.coords.copy_(torch.tensor([[0.1, 0.2], [1.3, 0.4], [2.2, 2.9]]))
        layer.post.coords.copy_(torch.tensor([[0.6, 1.6], [3.3, 0.9]]))
    delays = layer.delays().detach()
    # Away from the clamp and, for the linear kernel, from the integer kinks.
    assert (delays > 0).all() and (delays < 5).all()
    assert ((delays - delays.round()).abs() > 0.05).all()
    assert {n for n, _ in layer.named_parameters()} == {
        "weight",
        "bias",
        "pre.coords",
        "post.coords",
    }
    gradcheck_layer(layer, rng)


@pytest.mark.parametrize("kernel", ["gauss", "linear"])
def test_gradcheck_free_delays(kernel, rng):
    layer = SpatialDelay(3, 2, max_delay=5, kernel=kernel, delays="free", dtype=torch.float64)
    with torch.no_grad():
        layer.free_delays.copy_(torch.tensor([[0.3, 1.6, 4.2], [2.7, 3.4, 0.9]]))
    gradcheck_layer(layer, rng)


def test_gradcheck_no_delays(rng):
    layer = SpatialDelay(3, 2, max_delay=5, delays="none", bias=True, dtype=torch.float64)
    gradcheck_layer(layer, rng)


def test_gradcheck_input(rng):
    layer = SpatialDelay(3, 2, max_delay=4, kernel="gauss", dtype=torch.float64)
    x = torch.rand(5, 2, 3, generator=rng, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "where"),
    [
        ((5, 4), "forward"),
        ((5, 2, 3), "forward"),
        ((5, 2, 4, 1), "forward"),
        ((5, 2, 1), "forward"),
        ((2, 3), "step"),
        ((4,), "step"),
        ((5, 2, 4), "step"),
    ],
)
def test_wrong_rank_or_feature_size(shape, where):
    layer = SpatialDelay(4, 3, max_delay=2)
    call = layer if where == "forward" else layer.step
    layout = "(T, B, C_in)" if where == "forward" else "(B, C_in)"
    with pytest.raises(ValueError, match=re.escape(f"{layout} with C_in=4, got {shape}")):
        call(torch.zeros(shape))


@pytest.mark.parametrize("max_delay", [-1, 2.5, True, "3"])
def test_bad_max_delay(max_delay):
    with pytest.raises(ValueError, match="max_delay must be an int >= 0"):
        SpatialDelay(4, 3, max_delay=max_delay)


@pytest.mark.parametrize(
    ("dtype", "limit"),
    [(torch.float32, 2**24), (torch.float16, 2**11), (torch.bfloat16, 2**8)],
)
def test_max_delay_beyond_the_steps_a_dtype_counts_is_refused(dtype, limit):
    # Above the limit the dtype skips whole steps: limit + 1 would be read as limit or
    # limit + 2, so the delays could not be those of the coordinates.
    assert torch.tensor(limit + 1.0, dtype=torch.float64).to(dtype).item() != limit + 1
    assert torch.tensor(limit - 1.0, dtype=torch.float64).to(dtype).item() == limit - 1
    assert max_delay_limit(dtype) == limit
    message = rf"max_delay={limit + 1} steps is more than {dtype} delays can count"
    with pytest.raises(ValueError, match=message) as error:
        SpatialDelay(3, 2, max_delay=limit + 1, dtype=dtype)
    assert "\n" not in str(error.value)
    SpatialDelay(3, 2, max_delay=limit, dtype=dtype, delays="free")


def test_a_layer_cast_below_its_max_delay_refuses_to_run():
    layer = SpatialDelay(3, 2, max_delay=300).to(torch.bfloat16)
    with pytest.raises(ValueError, match=r"max_delay=300 steps is more than torch\.bfloat16"):
        layer(torch.zeros(4, 1, 3, dtype=torch.bfloat16))


def test_an_absurd_max_delay_is_refused_at_construction():
    message = r"max_delay=1000000000 steps .* \(max_delay <= 16777216\)"
    with pytest.raises(ValueError, match=message):
        SpatialDelay(3, 2, 10**9)


@pytest.mark.parametrize("velocity", [0.0, -1.0, float("inf"), float("nan")])
def test_bad_velocity(velocity):
    with pytest.raises(ValueError, match="velocity"):
        SpatialDelay(4, 3, max_delay=2, velocity=velocity)


def test_unknown_kernel_and_delay_mode():
    with pytest.raises(ValueError, match=r"kernel must be one of \('gauss', 'linear', 'round'\)"):
        SpatialDelay(4, 3, max_delay=2, kernel="box")
    with pytest.raises(ValueError, match=r"delays must be one of \('spatial', 'free', 'none'\)"):
        SpatialDelay(4, 3, max_delay=2, delays="learned")


def test_kernel_kind_setter_validates():
    layer = SpatialDelay(4, 3, max_delay=2)
    with pytest.raises(ValueError, match=r"kernel must be one of .* got 'max'"):
        layer.kernel_kind = "max"
    assert layer.kernel_kind == "gauss"


def test_use_kernel_switches_every_layer_and_restores_after_an_error():
    net = torch.nn.Sequential(
        SpatialDelay(2, 3, max_delay=4, kernel="linear"), SpatialDelay(3, 1, max_delay=4)
    )
    x = impulse(steps=8).expand(8, 1, 2).contiguous()
    with pytest.raises(RuntimeError, match="inside"), use_kernel(net, "round") as layers:
        assert [layer.kernel_kind for layer in layers] == ["round", "round"]
        raise RuntimeError("inside")
    assert [layer.kernel_kind for layer in delay_layers(net)] == ["linear", "gauss"]
    with use_kernel(net, None):
        assert [layer.kernel_kind for layer in delay_layers(net)] == ["linear", "gauss"]
    with pytest.raises(ValueError, match="kernel must be one of"), use_kernel(net, "box"):
        pass
    with use_kernel(net, "round"):
        rounded = net(x)
        inside = net.state_dict()
    # A mode, like eval(): the state saved inside the block keeps each layer's own kind.
    assert [state["kernel"] for key, state in inside.items() if key.endswith("_extra_state")] == [
        "linear", "gauss"
    ]  # fmt: skip
    reference = torch.nn.Sequential(*[
        SpatialDelay(lay.in_features, lay.out_features, max_delay=4) for lay in net
    ])  # fmt: skip
    reference.load_state_dict(net.state_dict())
    for layer in reference:
        layer.kernel_kind = "round"
    torch.testing.assert_close(rounded, reference(x), rtol=0, atol=0)


@pytest.mark.parametrize("population", [0, -3, 2.0, True, "8", None])
def test_bad_population(population):
    with pytest.raises(TypeError, match="NeuronPositions or a positive int"):
        SpatialDelay(population, 3, max_delay=2)
    with pytest.raises(TypeError, match="NeuronPositions or a positive int"):
        SpatialDelay(3, population, max_delay=2)


def test_mismatched_position_dims():
    with pytest.raises(ValueError, match="share a dimension, got 2 and 3"):
        SpatialDelay(NeuronPositions(4, dim=2), NeuronPositions(3, dim=3), max_delay=2)
    with pytest.raises(ValueError, match="share a dimension"):
        SpatialDelay(NeuronPositions(4, dim=3), 3, max_delay=2)  # private post is dim=2


def test_input_dtype_must_match_layer():
    layer = SpatialDelay(4, 3, max_delay=2)
    with pytest.raises(ValueError, match=r"input is torch\.float64"):
        layer(torch.zeros(5, 2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"input is torch\.bool"):
        layer.step(torch.zeros(2, 4, dtype=torch.bool))


@pytest.mark.parametrize("mode", MODES)
def test_mixed_precision_autocast_passes_half_inputs(mode, rng):
    # Under autocast a layer receives the previous layer's bfloat16 output; the
    # dtype check must let it through (and still refuse non-float input).
    first = SpatialDelay(4, 5, max_delay=3, delays=mode)
    second = SpatialDelay(5, 2, max_delay=3, delays=mode)
    x = torch.rand(6, 2, 4, generator=rng)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = first(x)
        assert hidden.dtype == torch.bfloat16
        y = second(hidden)
        stepped = torch.stack([second.step(h_t) for h_t in hidden])
        with pytest.raises(ValueError, match=r"input is torch\.bool"):
            second(hidden > 0)
    reference = second(first(x))
    torch.testing.assert_close(y.float(), reference, rtol=0.05, atol=0.05)
    torch.testing.assert_close(stepped, y, rtol=0.02, atol=0.02)


def test_positions_on_another_dtype():
    pre = NeuronPositions(4, dtype=torch.float64)
    layer = SpatialDelay(pre, 3, max_delay=2, dtype=torch.float32)
    with pytest.raises(ValueError, match=r"pre positions are torch.float64 .* move both with \.to"):
        layer(torch.zeros(5, 2, 4))
    with pytest.raises(ValueError, match="pre positions"):
        layer.step(torch.zeros(2, 4))


def test_positions_on_another_device():
    # The 'meta' device stands in for a GPU: the check must fire before any compute.
    post = NeuronPositions(3, device="meta")
    layer = SpatialDelay(4, post, max_delay=2)
    with pytest.raises(ValueError, match=r"post positions are torch.float32 on meta"):
        layer(torch.zeros(5, 2, 4))


def test_input_on_another_device():
    layer = SpatialDelay(4, 3, max_delay=2)
    with pytest.raises(ValueError, match=r"on meta but the layer is torch\.float32 on cpu"):
        layer(torch.zeros(5, 2, 4, device="meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_positions_on_cpu_layer_on_cuda():
    layer = SpatialDelay(NeuronPositions(4), 3, max_delay=2, device="cuda")
    with pytest.raises(ValueError, match="pre positions"):
        layer(torch.zeros(5, 2, 4, device="cuda"))


@pytest.mark.parametrize(
    ("bad", "counts"), [(float("nan"), "1 NaN and 0 Inf"), (float("inf"), "0 NaN and 1 Inf")]
)
@pytest.mark.parametrize("check_finite", [False, True])
def test_non_finite_input_is_refused_naming_where(bad, counts, check_finite):
    x = torch.zeros(5, 2, 4)
    x[2, 1, 3] = bad
    layer = SpatialDelay(4, 3, max_delay=2, check_finite=check_finite)
    with pytest.raises(NonFiniteInputError, match=rf"{counts} values .* first at \[2, 1, 3\]"):
        layer(x)
    with pytest.raises(NonFiniteInputError, match=rf"{counts} values .* first at \[1, 3\]"):
        layer.step(x[2])


def test_non_finite_coordinates_caught_only_when_asked():
    for check in (False, True):
        layer = SpatialDelay(4, 3, max_delay=2, check_finite=check)
        with torch.no_grad():
            layer.post.coords[1, 0] = float("nan")
        if check:
            with pytest.raises(ValueError, match="post coordinates contain NaN or Inf"):
                layer(torch.zeros(5, 2, 4))
        else:
            layer(torch.zeros(5, 2, 4))


def test_non_finite_free_delays_caught_when_asked():
    layer = SpatialDelay(4, 3, max_delay=2, delays="free", check_finite=True)
    with torch.no_grad():
        layer.free_delays[0, 0] = float("inf")
    with pytest.raises(ValueError, match="free delays contain NaN or Inf"):
        layer(torch.zeros(5, 2, 4))


# --- state dict: everything that changes the output --------------------------------------------


def trained_like(mode: str, rng: torch.Generator) -> SpatialDelay:
    """A layer whose every output-changing setting differs from a fresh layer's defaults."""
    layer = SpatialDelay(5, 4, max_delay=6, velocity=0.7, delays=mode, bias=True)
    with torch.no_grad():
        for param in layer.parameters():
            param.copy_(torch.rand(param.shape, generator=rng) * 4)
    layer.sigma = 0.8
    layer.kernel_kind = "linear"
    layer.weight_bits = 3
    return layer


@pytest.mark.parametrize("mode", MODES)
def test_state_dict_into_a_fresh_layer_reproduces_the_output(mode, rng):
    trained = trained_like(mode, rng)
    x = torch.rand(9, 2, 5, generator=rng)
    fresh = SpatialDelay(5, 4, max_delay=6, velocity=0.7, delays=mode, bias=True)
    fresh.load_state_dict(trained.state_dict())
    assert (fresh.kernel_kind, fresh.weight_bits, fresh.sigma) == ("linear", 3, trained.sigma)
    torch.testing.assert_close(fresh(x), trained(x), rtol=0, atol=0)
    fresh.kernel_kind, trained.kernel_kind = "gauss", "gauss"  # sigma, restored, now acts
    torch.testing.assert_close(fresh(x), trained(x), rtol=0, atol=0)
    # plain data: loads with weights_only
    assert isinstance(trained.state_dict()["_extra_state"], dict)


@pytest.mark.parametrize(
    ("other", "named"),
    [
        (dict(max_delay=5), "max_delay=6 (this layer: 5)"),
        (dict(velocity=1.0), "velocity=0.7 (this layer: 1.0)"),
        (dict(delays="free"), "delays='spatial' (this layer: 'free')"),
    ],
)
def test_state_dict_into_a_layer_built_otherwise_names_the_setting(other, named, rng):
    trained = trained_like("spatial", rng)
    settings = dict(max_delay=6, velocity=0.7, delays="spatial", bias=True) | other
    layer = SpatialDelay(5, 4, **settings)
    with pytest.raises(RuntimeError, match=re.escape(named)):
        layer.load_state_dict(trained.state_dict())
    with pytest.raises(RuntimeError, match=r"layers\.1: the state was saved by a layer with"):
        torch.nn.ModuleDict({"layers": torch.nn.ModuleList([layer, layer])}).load_state_dict(
            {f"layers.{i}.{k}": v for i in (0, 1) for k, v in trained.state_dict().items()}
        )


# --- a sequence builds only the taps it can use -------------------------------------------------


@pytest.mark.parametrize("mode", ["spatial", "free"])
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("steps", [1, 4, 9])
def test_short_sequence_builds_t_taps_with_the_full_kernels_numbers(
    mode, kernel, steps, rng, monkeypatch
):
    """max_delay 12 > T - 1: output and every gradient equal the full 13-tap kernel's."""
    layer = SpatialDelay(5, 4, max_delay=12, kernel=kernel, delays=mode, bias=True, sigma=2.0)
    with torch.no_grad():
        if mode == "free":  # delays on both sides of every cut, and between taps
            layer.free_delays.copy_(torch.rand(4, 5, generator=rng) * 12)
    x = torch.rand(steps, 3, 5, generator=rng, requires_grad=True)
    seen = []

    def spy(x, kernel, bias=None, **kwargs):
        seen.append(kernel.shape[-1])
        return delayed_linear(x, kernel, bias, method="dense")

    monkeypatch.setattr("spatial_layers.delay.delayed_linear", spy)
    grad_out = torch.rand(steps, 3, 4, generator=rng)
    y = layer(x)
    ours = torch.autograd.grad(y, [x, *layer.parameters()], grad_out)
    assert seen == [min(steps, 13)]
    full = delayed_linear(x, layer.applied_kernel(), layer.bias, method="dense")
    reference = torch.autograd.grad(full, [x, *layer.parameters()], grad_out)
    torch.testing.assert_close(y, full, rtol=1e-6, atol=1e-6)
    for got, want in zip(ours, reference, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_huge_max_delay_on_a_short_sequence_convolves_t_taps(rng, monkeypatch):
    # The case, smaller: max_delay=5000 on T=10 (the full kernel would be 5001 taps).
    layer = SpatialDelay(16, 16, max_delay=5000)
    seen = []

    def spy(x, kernel, bias=None, **kwargs):
        seen.append(tuple(kernel.shape))
        return delayed_linear(x, kernel, bias, **kwargs)

    monkeypatch.setattr("spatial_layers.delay.delayed_linear", spy)
    layer(torch.rand(10, 2, 16, generator=rng)).sum().backward()
    assert seen == [(16, 16, 10)]
    assert layer.pre.coords.grad.abs().sum() > 0


# --- bad values ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("where", ["forward", "step"])
@pytest.mark.parametrize("delays", ["spatial", "free"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_parameter_shows_as_nan_never_as_a_finite_delay(kernel, where, delays, bad):
    # clamp would turn +Inf into max_delay and -Inf into 0: a plausible delay, a finite output.
    layer = SpatialDelay(4, 3, max_delay=5, kernel=kernel, delays=delays)
    with torch.no_grad():
        if delays == "spatial":
            layer.pre.coords[1, 0] = bad
        else:
            layer.free_delays[:, 1] = bad
    assert torch.isnan(layer.delays()[:, 1]).all() and torch.isfinite(layer.delays()[:, 0]).all()
    x = torch.ones(6, 2, 4)
    y = layer(x) if where == "forward" else torch.stack([layer.step(x_t) for x_t in x])
    assert torch.isnan(y).all()  # every output neuron reads the broken input neuron


def test_no_time_steps_is_a_clear_error():
    with pytest.raises(ValueError, match=r"no time steps \(shape \(0, 2, 3\)\): need T >= 1"):
        SpatialDelay(3, 2, max_delay=4)(torch.zeros(0, 2, 3))
    with pytest.raises(ValueError, match="at least one time step, got T=0"):
        delayed_linear(torch.zeros(0, 2, 3), torch.zeros(2, 3, 5))


@pytest.mark.parametrize("method", ["dense", "fft", "dft"])
def test_chosen_method_is_used_and_gives_the_auto_numbers(method, monkeypatch, rng):
    import spatial_layers.functional as functional

    torch.manual_seed(0)
    auto = SpatialDelay(4, 3, max_delay=6, kernel="linear")
    chosen = SpatialDelay(4, 3, max_delay=6, kernel="linear", method=method)
    chosen.load_state_dict(auto.state_dict())
    assert f"method={method!r}" in repr(chosen) and "method='auto'" in repr(auto)
    x = (torch.rand(20, 2, 4, generator=rng) < 0.3).float()
    seen = []
    real_plan = functional.plan_delayed_linear
    monkeypatch.setattr(
        functional,
        "plan_delayed_linear",
        lambda *args: seen.append(args[-1]) or real_plan(*args),
    )
    torch.testing.assert_close(chosen(x), auto(x), rtol=1e-5, atol=1e-5)
    assert seen == [method, "auto"]


def test_bad_method_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"method must be one of \('auto', 'linear'"):
        SpatialDelay(4, 3, max_delay=2, method="conv")
    with pytest.raises(ValueError, match=r"method 'linear' applies one tap.*max_delay=2 needs 3"):
        SpatialDelay(4, 3, max_delay=2, method="linear")
    assert SpatialDelay(4, 3, max_delay=2, delays="none", method="linear")(
        torch.zeros(5, 1, 4)
    ).shape == (5, 1, 3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # each allocated C_out x C_in x (max_delay + 1), or B x C_in x (max_delay + 1), unchecked
        (
            lambda: SpatialDelay(700, 256, max_delay=2**24).kernel(),
            r"\)'s kernel needs .* GiB for its 3006477286400 values \(179200 x 16777217 taps\)",
        ),
        (
            lambda: SpatialDelay(700, 256, max_delay=2**24).step(torch.rand(1, 700)),
            r"^SpatialDelay\(700 -> 256, max_delay=16777216\)'s kernel needs",
        ),
        (
            lambda: SpatialDelay(4, 3, max_delay=2**20).step(torch.rand(10**6, 4)),
            r"'s step history needs .* GiB for its 4194308000000 values \(4000000 x 1048577",
        ),
        (
            lambda: SpatialDelay(700, 4, max_delay=2**24).forward_chunk(torch.rand(3, 1, 700)),
            r"'s chunk history needs .* \(700 x 16777217 taps\)",
        ),
    ],
)
def test_a_tensor_too_large_for_the_device_is_a_memory_error_naming_its_size(call, message):
    with pytest.raises(MemoryError, match=message) as error:
        call()
    assert "\n" not in str(error.value) and "use a smaller max_delay" in str(error.value)
    # the sequence call builds only min(T, max_delay + 1) taps: it runs
    assert SpatialDelay(700, 256, max_delay=2**24)(torch.rand(5, 1, 700)).shape == (5, 1, 256)
