"""spatial_layers.reset / detach: per-step state of a whole network (snnTorch: test_interop)."""

import torch
from torch import nn

import spatial_layers
from spatial_layers import SpatialDelay


def nested_network() -> nn.Module:
    """Per-step layers at two depths, with a module of another kind between them."""
    torch.manual_seed(0)
    inner = nn.Sequential(SpatialDelay(3, 4, max_delay=3, init_hidden=True), nn.Tanh())
    return nn.Sequential(inner, SpatialDelay(4, 2, max_delay=5, init_hidden=True))


def run(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.stack([net(x_t) for x_t in x])


def test_reset_starts_every_layer_on_a_new_sequence(rng):
    net = nested_network()
    first, second = torch.rand(2, 8, 2, 3, generator=rng)
    with torch.no_grad():
        fresh = run(net, second)
        run(net, first)
        carried = run(net, second)
        spatial_layers.reset(net)
        again = run(net, second)
    assert not torch.allclose(carried, fresh)  # the first sequence was still in flight
    assert torch.equal(again, fresh)


def test_detach_keeps_values_and_cuts_every_layer_s_gradient(rng):
    net = nested_network()
    x = torch.rand(10, 2, 3, generator=rng, requires_grad=True)
    whole = run(net, x)
    spatial_layers.reset(net)
    head = run(net, x[:6])
    head.sum().backward()
    spatial_layers.detach(net)
    tail = run(net, x[6:])
    assert torch.equal(torch.cat([head, tail]), whole)
    x.grad = None
    tail.sum().backward()
    assert (x.grad[:6] == 0).all() and (x.grad[6:] != 0).any()  # nothing before the cut
