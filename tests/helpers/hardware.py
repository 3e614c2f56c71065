"""Networks in (or for) the Loihi 2 profile, and binary spike inputs for them."""

from __future__ import annotations

import torch

from spatial_layers.networks import SpatialSNN


def small_net(**kwargs) -> SpatialSNN:
    torch.manual_seed(0)
    arguments = {"max_delay": 8, "beta": 0.95, "init_gain": 5.0} | kwargs
    return SpatialSNN(5, 3, [16], **arguments)


def profile_net(hidden=(16, 12), seed=0, gain=6.0, **kwargs) -> SpatialSNN:
    torch.manual_seed(seed)
    arguments = {"max_delay": 10, "beta": 0.9, "init_gain": gain, "readout_beta": 0.95} | kwargs
    net = SpatialSNN(5, 3, list(hidden), **arguments)
    net.hardware_profile = "loihi2"
    return net.eval().requires_grad_(False)


def binary_input(steps=40, batch=8, seed=1, rate=0.2, channels=5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, channels, generator=generator) < rate).float()
