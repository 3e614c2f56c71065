"""Distances and coordinate delays in one autograd node, against the composite autograd form."""

from __future__ import annotations

import pytest
import torch

from spatial_layers.geometry import coordinate_delays, distance_to_delay, pairwise_distance


def composite_distance(post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """The form autograd differentiated before: guarded square root, gradient 0 at 0."""
    squared = (post[:, None, :] - pre[None, :, :]).pow(2).sum(-1)
    coincident = squared == 0
    safe = torch.where(coincident, torch.ones_like(squared), squared)
    return torch.where(coincident, torch.zeros_like(squared), safe.sqrt())


def points(rng: torch.Generator, dtype: torch.dtype, dim: int = 2):
    post = (torch.rand(9, dim, generator=rng, dtype=dtype) * 6).requires_grad_()
    pre = (torch.rand(7, dim, generator=rng, dtype=dtype) * 6).requires_grad_()
    with torch.no_grad():
        pre[2] = post[4]  # coincident: distance 0, gradient 0
        pre[5] = post[0] + 100  # clamped at max_delay: gradient 0
    return post, pre


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_values_are_bit_for_bit_and_gradients_to_rounding(dtype, dim, rng):
    post, pre = points(rng, dtype, dim)
    probe = torch.randn(9, 7, generator=rng, dtype=dtype)
    cases = [
        (pairwise_distance(post, pre), composite_distance(post, pre)),
        (
            coordinate_delays(post, pre, 1.5, 3),
            distance_to_delay(composite_distance(post, pre), 1.5, 3),
        ),
    ]
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 0}
    for ours, composite in cases:
        assert torch.equal(ours, composite)
        got = torch.autograd.grad((ours * probe).sum(), (post, pre))
        want = torch.autograd.grad((composite * probe).sum(), (post, pre))
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, **tol)


def test_coincident_points_get_zero_gradient_and_nan_stays_nan():
    post = torch.tensor([[1.0, 2.0], [float("nan"), 0.0]], requires_grad=True)
    pre = torch.tensor([[1.0, 2.0]], requires_grad=True)
    distance = pairwise_distance(post, pre)
    assert distance[0, 0] == 0 and torch.isnan(distance[1, 0])
    (grad_post,) = torch.autograd.grad(distance[0].sum(), post)
    assert torch.equal(grad_post[0], torch.zeros(2))


def test_one_population_on_both_sides_gets_both_gradients(rng):
    """A recurrent layer passes one coordinate tensor as pre and post."""
    coords = (torch.rand(6, 2, generator=rng, dtype=torch.float64) * 4).requires_grad_()
    probe = torch.randn(6, 6, generator=rng, dtype=torch.float64)
    (ours,) = torch.autograd.grad((coordinate_delays(coords, coords, 1.0, 9) * probe).sum(), coords)
    composite = distance_to_delay(composite_distance(coords, coords), 1.0, 9)
    (want,) = torch.autograd.grad((composite * probe).sum(), coords)
    torch.testing.assert_close(ours, want, rtol=1e-12, atol=1e-14)


def test_gradcheck(rng):
    post = (torch.rand(4, 2, generator=rng, dtype=torch.float64) * 3).requires_grad_()
    pre = (torch.rand(3, 2, generator=rng, dtype=torch.float64) * 3).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: coordinate_delays(a, b, 0.7, 5), (post, pre))
    assert torch.autograd.gradcheck(pairwise_distance, (post, pre))
