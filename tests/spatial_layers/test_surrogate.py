"""The arctan surrogate gradient of a spike, as snnTorch defines it."""

import math

import torch

from spatial_layers import LeakyParameters, leaky_step


def test_surrogate_gradient_formula():
    alpha = 2.0
    membrane = torch.tensor([0.2, 1.0, 1.4], requires_grad=True)
    # From a zero membrane, U_t = I_t: the spike's gradient is the surrogate at I - threshold.
    spikes, _ = leaky_step(membrane, torch.zeros(3), LeakyParameters(1.0, 1.0, alpha))
    spikes.sum().backward()
    shifted = membrane.detach() - 1.0
    expected = alpha / 2 / (1 + (math.pi / 2 * alpha * shifted) ** 2)
    torch.testing.assert_close(membrane.grad, expected)
