"""Masks, Dale signs, top-k selections and wiring cost (spatial_layers.sparsity)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spatial_layers import NeuronPositions, SpatialDelay
from spatial_layers.sparsity import (
    DenseGradients,
    active_count,
    assign_dale_signs,
    check_density,
    check_fraction,
    check_sparsity,
    cosine_drop_fraction,
    initialise_sparsity,
    layer_active_counts,
    random_mask,
    random_select,
    rewire,
    set_density,
    signed_growth,
    spatial_delay_layers,
    step_generator,
    topk_select,
    wiring_cost,
    zero_optimizer_state,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, math.nan, math.inf, True, "0.5"])
def test_density_out_of_range_raises(bad):
    with pytest.raises(ValueError, match="density"):
        check_density(bad)


@pytest.mark.parametrize("bad", [1.0, -0.01, 2.0, math.nan])
def test_sparsity_out_of_range_raises(bad):
    with pytest.raises(ValueError, match="sparsity"):
        check_sparsity(bad)


@pytest.mark.parametrize("bad", [-0.2, 1.01, math.nan])
def test_fraction_out_of_range_raises(bad):
    with pytest.raises(ValueError, match="excitatory_fraction"):
        check_fraction("excitatory_fraction", bad)


def test_bounds_are_accepted():
    assert check_density(1.0) == 1.0
    assert check_sparsity(0.0) == 0.0
    assert check_fraction("f", 0) == 0.0 and check_fraction("f", 1) == 1.0


# ----------------------------------------------------------------------------- masks


@pytest.mark.parametrize("density", [1e-3, 0.1, 0.25, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("shape", [(7, 13), (256, 140), (3, 1)])
def test_random_mask_has_exact_count(shape, density):
    mask = random_mask(shape, density, gen())
    assert mask.dtype == torch.bool and mask.shape == shape
    assert int(mask.sum()) == active_count(math.prod(shape), density)
    assert active_count(math.prod(shape), density) == max(1, round(density * math.prod(shape)))


def erk_reference_densities(shapes, sparsity):
    """ERK by bisection on the scale: sum_l min(1, scale * raw_l) * numel_l = active total."""
    numels = np.array([r * c for r, c in shapes], dtype=float)
    raw = np.array([(r + c) / (r * c) for r, c in shapes])
    total = round((1 - sparsity) * numels.sum())
    low, high = 0.0, 1.0 / raw.min()
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if (np.minimum(1, mid * raw) * numels).sum() < total else (low, mid)
    return np.minimum(1, low * raw), total


@pytest.mark.parametrize(
    "shapes",
    [
        [(128, 5), (128, 128), (3, 128)],  # Yin-Yang, 2 hidden layers
        [(256, 140), (256, 256), (256, 256), (20, 256)],  # SHD, DCLS-delays
        [(60, 5), (3, 60)],
        [(1000, 1000), (10, 1000), (1000, 2)],
    ],
)
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.99])
def test_erk_counts_match_a_bisection_reference_and_the_exact_total(shapes, sparsity):
    counts = layer_active_counts(shapes, sparsity, "erk")
    densities, total = erk_reference_densities(shapes, sparsity)
    assert sum(counts) == total
    for (rows, cols), count, density in zip(shapes, counts, densities, strict=True):
        assert 1 <= count <= rows * cols
        assert abs(count - density * rows * cols) < 1.0 + 1e-6


def test_erk_keeps_small_layers_denser_and_uniform_is_per_layer():
    shapes = [(128, 5), (128, 128), (3, 128)]
    first, hidden, readout = layer_active_counts(shapes, 0.9, "erk")
    assert readout == 3 * 128  # its ERK density would exceed 1: kept dense
    assert first / 640 > 0.5 > 0.1 > hidden / 128**2
    assert layer_active_counts(shapes, 0.9) == [active_count(r * c, 0.1) for r, c in shapes]
    with pytest.raises(ValueError, match="distribution"):
        layer_active_counts(shapes, 0.9, "random")


def test_random_mask_is_reproducible_and_random():
    a = random_mask((20, 30), 0.2, gen(1))
    assert torch.equal(a, random_mask((20, 30), 0.2, gen(1)))
    assert not torch.equal(a, random_mask((20, 30), 0.2, gen(2)))


def test_random_mask_rejects_bad_density():
    with pytest.raises(ValueError, match="density"):
        random_mask((4, 4), 0.0)


def test_set_density_zeroes_dormant_weights_and_rescales():
    layer = SpatialDelay(40, 30, max_delay=3)
    dense = layer.weight.detach().clone()
    mask = set_density(layer, 0.25, gen(), rescale=True)
    assert mask is layer.mask
    assert int(layer.mask.sum()) == 300
    assert torch.all(layer.weight[~layer.mask] == 0)
    torch.testing.assert_close(layer.weight[layer.mask], dense[layer.mask] * 2.0)


def test_spatial_delay_layers_finds_layers_by_pattern():
    net = torch.nn.ModuleDict(
        {
            "a": SpatialDelay(3, 4, max_delay=1),
            "b": torch.nn.Sequential(SpatialDelay(4, 2, max_delay=1)),
        }
    )
    assert [name for name, _ in spatial_delay_layers(net)] == ["a", "b.0"]
    assert [name for name, _ in spatial_delay_layers(net, ["b.*"])] == ["b.0"]


def test_step_generator_depends_on_every_key():
    draw = [torch.rand(3, generator=step_generator(0, *keys)) for keys in [(1, 2), (1, 2), (2, 1)]]
    assert torch.equal(draw[0], draw[1]) and not torch.equal(draw[0], draw[2])


# ----------------------------------------------------------------------------- Dale


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.8, 1.0])
def test_assign_dale_signs_exact_split_and_signs(fraction):
    layer = SpatialDelay(25, 10, max_delay=2)
    sign = assign_dale_signs(layer, fraction, gen())
    assert sign is layer.sign and sign.shape == (25,)
    assert set(sign.unique().tolist()) <= {-1.0, 1.0}
    assert int((sign > 0).sum()) == round(fraction * 25)
    assert torch.all(layer.weight >= 0)
    assert torch.all(layer.effective_weight() * sign >= 0)


def test_assign_dale_signs_rejects_bad_fraction():
    with pytest.raises(ValueError, match="excitatory_fraction"):
        assign_dale_signs(SpatialDelay(3, 2, max_delay=1), 1.2)


def test_dale_weight_at_zero_still_learns():
    """A synapse regrown at w = 0 under Dale must get a gradient (|w| would give none)."""
    layer = SpatialDelay(4, 3, max_delay=2)
    assign_dale_signs(layer, 0.5, gen())
    with torch.no_grad():
        layer.weight.zero_()
    layer.effective_weight().sum().backward()
    torch.testing.assert_close(layer.weight.grad, layer.sign.expand(3, 4))


def test_dale_signs_survive_a_state_dict_round_trip():
    layer = SpatialDelay(6, 5, max_delay=2)
    assign_dale_signs(layer, 0.5, gen())
    fresh = SpatialDelay(6, 5, max_delay=2)
    fresh.load_state_dict(layer.state_dict())
    torch.testing.assert_close(fresh.sign, layer.sign)
    torch.testing.assert_close(fresh.effective_weight(), layer.effective_weight())


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("delays", ["spatial", "free", "none"])
@pytest.mark.parametrize("dale", [False, True])
def test_masked_weights_get_zero_gradient_and_give_nothing(delays, dale):
    torch.manual_seed(0)
    layer = SpatialDelay(8, 6, max_delay=3, delays=delays, kernel="linear")
    if dale:
        assign_dale_signs(layer, 0.8, gen())
    set_density(layer, 0.3, gen())
    with torch.no_grad():
        layer.weight[~layer.mask] = 5.0  # even a large dormant weight must not count
    x = (torch.rand(12, 2, 8) < 0.5).float()
    y = layer(x)
    y.pow(2).sum().backward()
    assert torch.all(layer.weight.grad[~layer.mask] == 0)
    assert layer.weight.grad[layer.mask].abs().sum() > 0
    reference = SpatialDelay(8, 6, max_delay=3, delays=delays, kernel="linear")
    reference.load_state_dict(layer.state_dict())
    with torch.no_grad():
        reference.weight.mul_(reference.mask)
        reference.mask.fill_(True)
    torch.testing.assert_close(reference(x), y)


# ----------------------------------------------------------------------------- selections


def test_topk_select_respects_eligibility_and_order():
    scores = torch.tensor([[5.0, 1.0, 3.0], [4.0, 2.0, 0.5]])
    eligible = torch.tensor([[False, True, True], [True, True, True]])
    largest = topk_select(scores, eligible, 2)
    assert largest.tolist() == [[False, False, True], [True, False, False]]
    smallest = topk_select(scores, eligible, 2, largest=False)
    assert smallest.tolist() == [[False, True, False], [False, False, True]]
    assert int(topk_select(scores, eligible, 99).sum()) == 5  # clamped
    assert int(topk_select(scores, eligible, 0).sum()) == 0


def test_random_select_is_uniform_over_eligible():
    eligible = torch.zeros(100, dtype=torch.bool)
    eligible[::2] = True
    counts = torch.zeros(100)
    for seed in range(400):
        pick = random_select(eligible, 5, gen(seed))
        assert int(pick.sum()) == 5 and not (pick & ~eligible).any()
        counts += pick
    assert counts[~eligible].sum() == 0
    # 400 * 5 / 50 = 40 expected per eligible entry
    assert counts[eligible].min() > 15 and counts[eligible].max() < 70


def test_cosine_drop_fraction_schedule():
    assert cosine_drop_fraction(0, 0.3, 100) == pytest.approx(0.3)
    assert cosine_drop_fraction(50, 0.3, 100) == pytest.approx(0.15)
    assert cosine_drop_fraction(25, 0.3, 100) == pytest.approx(0.15 * (1 + math.cos(math.pi / 4)))
    assert cosine_drop_fraction(100, 0.3, 100) == 0.0
    assert cosine_drop_fraction(150, 0.3, 100) == 0.0


def test_rewire_moves_synapses_and_zeroes_them():
    layer = SpatialDelay(5, 4, max_delay=1)
    set_density(layer, 0.5, gen())
    drop = topk_select(layer.weight.abs(), layer.mask, 3, largest=False)
    grow = topk_select(torch.rand(4, 5, generator=gen()), ~layer.mask, 3)
    before = layer.mask.clone()
    rewire(layer, drop, grow)
    assert int(layer.mask.sum()) == int(before.sum())
    assert torch.equal(layer.mask, (before & ~drop) | grow)
    assert torch.all(layer.weight[drop | grow] == 0)
    with pytest.raises(ValueError, match="dormant"):
        rewire(layer, torch.zeros_like(drop), layer.mask.clone())
    with pytest.raises(ValueError, match="active"):
        rewire(layer, ~layer.mask, torch.zeros_like(drop))


def test_zero_optimizer_state_resets_moments():
    param = torch.nn.Parameter(torch.ones(3, 4))
    optimizer = torch.optim.Adam([param], lr=0.1)
    param.grad = torch.ones(3, 4)
    optimizer.step()
    where = torch.zeros(3, 4, dtype=torch.bool)
    where[0, 1] = where[2, 3] = True
    zero_optimizer_state([optimizer], param, where)
    state = optimizer.state[param]
    for key in ("exp_avg", "exp_avg_sq"):
        assert torch.all(state[key][where] == 0) and torch.all(state[key][~where] != 0)


@pytest.mark.parametrize("dale", [False, True])
def test_dense_gradients_equal_an_unmasked_copys_and_leave_the_layer_as_it_was(dale):
    torch.manual_seed(0)
    layer = SpatialDelay(16, 12, max_delay=3, kernel="linear")
    set_density(layer, 0.3, gen(1))
    if dale:
        assign_dale_signs(layer, 0.7, gen(2))
    mask, weight = layer.mask.clone(), layer.weight.detach().clone()
    reference = SpatialDelay(16, 12, max_delay=3, kernel="linear")
    reference.load_state_dict(layer.state_dict())
    reference.mask.fill_(True)  # dormant weights are 0: the same numbers, dense gradients
    x = (torch.rand(10, 4, 16, generator=gen(3)) < 0.4).float()
    reference(x).pow(2).sum().backward()

    dense = DenseGradients([("a", layer)])
    dense.open()
    assert dense.is_open and layer.mask.all()
    dense.open()  # a second open keeps the closed masks it saved
    out = layer(x)
    out.pow(2).sum().backward()
    dense.close(record=True)
    assert not dense.is_open and torch.equal(layer.mask, mask)
    torch.testing.assert_close(dense.gradient("a"), reference.weight.grad)
    assert (reference.weight.grad[~mask] != 0).any()  # dormant synapses have a gradient
    assert torch.all(layer.weight.grad[~mask] == 0)  # which the optimizer never sees
    torch.testing.assert_close(layer.weight.grad[mask], reference.weight.grad[mask])
    assert torch.equal(layer.weight, weight)
    torch.testing.assert_close(out, reference(x))  # the open forward changed nothing
    assert dense.recorded
    dense.clear()
    assert not dense.recorded and dense.gradient("a") is None
    dense.close(record=True)  # closing closed masks does nothing
    assert torch.equal(layer.mask, mask)


def test_dense_gradients_close_without_record_keeps_nothing():
    layer = SpatialDelay(6, 4, max_delay=1)
    set_density(layer, 0.5, gen())
    dense = DenseGradients([("a", layer)])
    dense.open()
    layer(torch.ones(3, 2, 6)).sum().backward()
    dense.close(record=False)
    assert dense.gradient("a") is None and not dense.recorded
    assert int(layer.mask.sum()) == 12 and torch.all(layer.weight.grad[~layer.mask] == 0)


@pytest.mark.parametrize("dale", [False, True])
def test_signed_growth_matches_a_loop_over_candidates(dale):
    grad = torch.randn(7, 9, generator=gen(4))
    candidates = torch.rand(7, 9, generator=gen(5)) < 0.6
    grown, negative = signed_growth(grad, candidates, 5, dale=dale)
    # reference: score each candidate by the growth the gradient allows, take the 5 best
    scored = []
    for i in range(7):
        for j in range(9):
            if candidates[i, j]:
                g = float(grad[i, j])
                scored.append((max(0.0, -g) if dale else abs(g), i, j))
    best = sorted(scored, reverse=True)[:5]
    assert {(i, j) for _, i, j in best} == set(map(tuple, grown.nonzero().tolist()))
    for _, i, j in best:  # without Dale the new synapse takes the sign -sign(grad)
        assert bool(negative[i, j]) == (not dale and float(grad[i, j]) > 0)
    assert not (negative & ~grown).any()


def test_initialise_sparsity_draws_exact_counts_once():
    layers = [("a", SpatialDelay(5, 8, max_delay=1)), ("b", SpatialDelay(8, 3, max_delay=1))]
    initialise_sparsity(layers, 0.75, seed=3, rescale=False, distribution="erk")
    expected = layer_active_counts([(8, 5), (3, 8)], 0.75, "erk")
    assert [int(layer.mask.sum()) for _, layer in layers] == expected
    masks = [layer.mask.clone() for _, layer in layers]
    initialise_sparsity(layers, 0.75, seed=4, rescale=True, distribution="erk")
    assert all(torch.equal(m, layer.mask) for m, (_, layer) in zip(masks, layers, strict=True))


# ----------------------------------------------------------------------------- wiring cost


def _numpy_wiring_cost(layer: SpatialDelay) -> float:
    weight = layer.effective_weight().detach().double().numpy()
    mask = layer.mask.numpy()
    if layer.delay_mode == "spatial":
        post = layer.post.coords.detach().double().numpy()
        pre = layer.pre.coords.detach().double().numpy()
        length = np.sqrt(((post[:, None, :] - pre[None, :, :]) ** 2).sum(-1))
    elif layer.delay_mode == "free":
        delays = np.clip(layer.free_delays.detach().double().numpy(), 0, layer.max_delay)
        length = delays * layer.velocity
    else:
        length = np.zeros_like(weight)
    return float((np.abs(weight) * length * mask).sum())


@pytest.mark.parametrize("delays", ["spatial", "free", "none"])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_wiring_cost_matches_numpy(delays, dim):
    torch.manual_seed(dim)
    layer = SpatialDelay(
        NeuronPositions(9, dim, scale=4.0),
        NeuronPositions(7, dim, scale=4.0),
        max_delay=5,
        velocity=0.7,
        delays=delays,
        dtype=torch.float64,
    )
    if delays == "spatial":
        layer.pre.double(), layer.post.double()
    if dim == 2:
        assign_dale_signs(layer, 0.6, gen())
    set_density(layer, 0.4, gen())
    with torch.no_grad():
        layer.weight[~layer.mask] = 3.0  # dormant synapses must not add wire
    cost = wiring_cost(layer)
    assert cost.dim() == 0
    assert float(cost.detach()) == pytest.approx(_numpy_wiring_cost(layer), rel=1e-12, abs=1e-12)


class _WiringCost(torch.nn.Module):
    def __init__(self, layer: SpatialDelay) -> None:
        super().__init__()
        self.layer = layer

    def forward(self) -> torch.Tensor:
        return wiring_cost(self.layer)


def test_wiring_cost_gradients_are_finite_and_exact():
    torch.manual_seed(0)
    layer = SpatialDelay(6, 5, max_delay=4, dtype=torch.float64)
    layer.pre.double(), layer.post.double()
    set_density(layer, 0.5, gen())
    with torch.no_grad():  # keep weights away from |w|'s kink for finite differences
        layer.weight.add_(layer.weight.sign() * 0.05 * layer.mask)
        layer.post.coords[0] = layer.pre.coords[0]  # coincident neurons: distance 0
    wiring_cost(layer).backward()
    for p in (layer.weight, layer.pre.coords, layer.post.coords):
        assert torch.isfinite(p.grad).all()
    assert torch.all(layer.weight.grad[~layer.mask] == 0)

    with torch.no_grad():  # finite differences away from the coincident pair
        layer.post.coords[0] += 0.3
    module = _WiringCost(layer)
    names = ["layer.weight", "layer.pre.coords", "layer.post.coords"]
    inputs = [module.get_parameter(n).detach().clone().requires_grad_() for n in names]

    def cost(*tensors):
        return torch.func.functional_call(module, dict(zip(names, tensors, strict=True)), ())

    assert torch.autograd.gradcheck(cost, inputs)


def test_wiring_cost_rejects_other_modules():
    with pytest.raises(TypeError, match="SpatialDelay"):
        wiring_cost(torch.nn.Linear(2, 2))
