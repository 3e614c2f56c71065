"""NeuronPositions, pairwise distances and the distance -> delay map, against numpy."""

import numpy as np
import pytest
import torch

from spatial_layers import NeuronPositions, SpatialDelay, distance_to_delay, pairwise_distance
from spatial_layers.geometry import coordinate_delays


def numpy_delays(post: np.ndarray, pre: np.ndarray, velocity: float, max_delay: int) -> np.ndarray:
    """Independent reference: d_ij = clamp(||p_i - p_j|| / v, 0, max_delay), by a double loop."""
    out = np.empty((len(post), len(pre)))
    for i, p_i in enumerate(post):
        for j, p_j in enumerate(pre):
            out[i, j] = min(max(np.sqrt(np.sum((p_i - p_j) ** 2)) / velocity, 0.0), max_delay)
    return out


@pytest.mark.parametrize("dim", [1, 2, 3, 5])
def test_pairwise_distance_matches_numpy(dim, rng):
    post = torch.randn(7, dim, generator=rng, dtype=torch.float64)
    pre = torch.randn(4, dim, generator=rng, dtype=torch.float64)
    expected = np.linalg.norm(post.numpy()[:, None, :] - pre.numpy()[None, :, :], axis=-1)
    dist = pairwise_distance(post, pre)
    assert dist.shape == (7, 4)
    np.testing.assert_allclose(dist.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_distance_to_delay_clamps_to_range():
    distance = torch.tensor([0.0, 0.5, 3.0, 7.9, 8.0, 100.0])
    delays = distance_to_delay(distance, velocity=2.0, max_delay=3)
    np.testing.assert_allclose(delays.numpy(), [0.0, 0.25, 1.5, 3.0, 3.0, 3.0], rtol=1e-7)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("velocity", [0.5, 1.0, 3.0])
def test_layer_delays_match_numpy(dim, velocity, rng):
    pre, post = NeuronPositions(6, dim), NeuronPositions(5, dim)
    with torch.no_grad():
        pre.coords.copy_(torch.randn(6, dim, generator=rng) * 4 * velocity)
        post.coords.copy_(torch.randn(5, dim, generator=rng) * 4 * velocity)
    layer = SpatialDelay(pre, post, max_delay=7, velocity=velocity, kernel="linear")
    expected = numpy_delays(
        post.coords.detach().double().numpy(), pre.coords.detach().double().numpy(), velocity, 7
    )
    # Both sides of the clamp must be exercised for the check to mean anything.
    assert (expected == 7).any() and (expected < 7).any()
    delays = layer.delays()
    assert delays.shape == (5, 6)
    np.testing.assert_allclose(delays.detach().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_private_positions_span_the_delay_range():
    # From ints, the layer spreads its private neurons so that the largest
    # possible distance is velocity * max_delay, whatever the velocity.
    for velocity in (0.1, 1.0, 7.0):
        layer = SpatialDelay(60, 50, max_delay=4, velocity=velocity, dim=3)
        delays = layer.delays()
        assert delays.min() >= 0 and delays.max() <= 4
        assert delays.max() > 2.5


@pytest.mark.parametrize("kernel", ["gauss", "linear", "round"])
def test_gradient_at_coincident_positions_is_finite(kernel):
    pos = NeuronPositions(3, dim=2)
    with torch.no_grad():
        pos.coords.copy_(torch.tensor([[0.5, 0.5], [0.5, 0.5], [1.5, 0.2]]))
    # pos -> pos: the diagonal (self-synapses) and synapses 0<->1 have distance exactly 0.
    layer = SpatialDelay(pos, pos, max_delay=4, kernel=kernel)
    dist = pairwise_distance(pos.coords, pos.coords)
    assert (dist == 0).sum() == 5
    x = torch.rand(6, 2, 3)
    layer(x).square().sum().backward()
    assert pos.coords.grad is not None
    assert torch.isfinite(pos.coords.grad).all()
    assert torch.isfinite(layer.weight.grad).all()


def test_pairwise_distance_gradient_at_zero_is_zero_not_nan():
    points = torch.zeros(2, 3, requires_grad=True)
    pairwise_distance(points, points).sum().backward()
    assert torch.equal(points.grad, torch.zeros(2, 3))


def test_pairwise_distance_gradcheck():
    post = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    pre = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(pairwise_distance, (post, pre))


def test_pairwise_distance_rejects_mismatched_dims():
    with pytest.raises(ValueError, match="same dimension"):
        pairwise_distance(torch.zeros(3, 2), torch.zeros(4, 3))


def test_neuron_positions_shapes_and_init():
    pos = NeuronPositions(700, dim=2)
    assert isinstance(pos.coords, torch.nn.Parameter)
    assert pos.coords.shape == (700, 2)
    assert pos() is pos.coords
    assert pos.coords.min() >= 0 and pos.coords.max() <= 1.0  # uniform over [0, scale]

    wide = NeuronPositions(2000, dim=3, init="uniform", scale=5.0)
    assert wide.coords.min() >= 0 and wide.coords.max() <= 5.0
    assert wide.coords.max() > 4.5  # fills the range, not a fraction of it

    normal = NeuronPositions(4000, dim=1, init="normal", scale=2.0)
    assert abs(normal.coords.mean().item()) < 0.15
    assert abs(normal.coords.std().item() - 2.0) < 0.15


def test_neuron_positions_factory_kwargs_and_reset():
    pos = NeuronPositions(5, dim=3, dtype=torch.float64, device="cpu")
    assert pos.coords.dtype == torch.float64
    before = pos.coords.detach().clone()
    pos.reset_parameters()
    assert not torch.equal(before, pos.coords)
    assert "5, dim=3" in repr(pos)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_neurons": 0}, "num_neurons"),
        ({"dim": 0}, "dim must be >= 1"),
        ({"init": "gaussian"}, "init must be one of"),
        ({"scale": 0.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
    ],
)
def test_neuron_positions_errors(kwargs, message):
    args = {"num_neurons": 4, "dim": 2} | kwargs
    num_neurons = args.pop("num_neurons")
    with pytest.raises(ValueError, match=message):
        NeuronPositions(num_neurons, **args)


def test_shared_positions_receive_gradient_from_every_layer():
    pos_in, pos_hid, pos_out = NeuronPositions(3), NeuronPositions(4), NeuronPositions(2)
    first = SpatialDelay(pos_in, pos_hid, max_delay=3, kernel="gauss")
    second = SpatialDelay(pos_hid, pos_out, max_delay=3, kernel="gauss")
    assert first.post is second.pre  # one module, not a copy
    x, h = torch.rand(5, 2, 3), torch.rand(5, 2, 4)

    grads = []
    for loss_of in (lambda: first(x).sum(), lambda: second(h).sum()):
        pos_hid.coords.grad = None
        loss_of().backward()
        grads.append(pos_hid.coords.grad.clone())
    assert all(g.abs().sum() > 0 for g in grads)

    pos_hid.coords.grad = None
    (first(x).sum() + second(h).sum()).backward()
    # Moving one hidden neuron moves the delays of both layers' synapses.
    torch.testing.assert_close(pos_hid.coords.grad, grads[0] + grads[1])


def test_a_nan_coordinate_gives_nan_distances_never_zero():
    post = torch.tensor([[0.0, 0.0], [float("nan"), 1.0]], requires_grad=True)
    pre = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    dist = pairwise_distance(post, pre)
    assert dist[0].tolist() == [0.0, 5.0]
    assert torch.isnan(dist[1]).all()
    dist[0].sum().backward()  # coincident points still have a zero, finite gradient
    torch.testing.assert_close(post.grad[0], torch.tensor([-0.6, -0.8]))


def test_an_inf_distance_or_coordinate_gives_a_nan_delay_never_max_delay():
    inf = float("inf")
    assert torch.isnan(distance_to_delay(torch.tensor([inf, -inf]), 1.0, 4)).all()
    # A finite distance over a tiny velocity overflows to Inf: NaN as well, not max_delay.
    assert torch.isnan(distance_to_delay(torch.tensor([1e30]), 1e-30, 4)).all()
    assert distance_to_delay(torch.tensor([-1.0, 2.5, 9.0]), 1.0, 4).tolist() == [0.0, 2.5, 4.0]
    post = torch.tensor([[0.0, 0.0], [inf, 1.0]])
    pre = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    fused = coordinate_delays(post, pre, 1.0, 4)
    assert fused[0].tolist() == [0.0, 4.0] and torch.isnan(fused[1]).all()
    torch.testing.assert_close(
        fused, distance_to_delay(pairwise_distance(post, pre), 1.0, 4), equal_nan=True
    )
