"""torch.compile of a SpatialSNN training step: one graph (fullgraph=True), no recompiles.

Dynamo runs on CPU with the ``aot_eager`` backend (forward and backward traced by AOT
autograd, no code generation), so the test checks tracing, not the CPU compiler. What a
training run changes between steps (sigma annealing, rewired masks, Dale signs) must
not force a recompile, and the compiled numbers must equal the eager ones.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
import torch.nn.functional as F

from spatial_layers.functional import plan_delayed_linear
from spatial_layers.networks import SpatialSNN
from spatial_layers.sparsity import assign_dale_signs, set_density

CASES = {
    # T=100, 64 channels, 26 taps: the planner takes the whole-sequence DFT path.
    "gauss-dft": (100, dict(max_delay=25, batch_norm=True, dropout=0.0)),
    "linear-fft": (400, dict(max_delay=60, kernel="linear")),
    "round-free": (30, dict(max_delay=5, kernel="round", delays="free")),
    "recurrent": (20, dict(max_delay=5, recurrent=True)),
    "spiking-output": (20, dict(max_delay=5, spiking_output=True, delays="none")),
}


def loss_of(net: SpatialSNN, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(net.run(x).membrane.mean(0), labels)


@pytest.mark.parametrize("case", CASES)
def test_training_step_compiles_to_one_graph_without_recompiles(case):
    steps, options = CASES[case]
    torch.manual_seed(0)
    channels = 64 if case == "gauss-dft" else 16
    net = SpatialSNN(channels, 3, [channels], init_gain=3.0, **options)
    for layer in net.delay_layers():
        set_density(layer, 0.7, torch.Generator().manual_seed(1))
        assign_dale_signs(layer, 0.8, torch.Generator().manual_seed(2))
    x = (torch.rand(steps, 2, channels) < 0.2).float()
    labels = torch.tensor([0, 2])
    if case == "gauss-dft":
        assert plan_delayed_linear(steps, 2, channels, channels, 26).method == "dft"

    torch._dynamo.reset()
    compiled = torch.compile(loss_of, fullgraph=True, backend="aot_eager")
    with torch._dynamo.config.patch(error_on_recompile=True):
        for step in range(3):
            eager_loss = loss_of(net, x, labels)
            eager_grads = torch.autograd.grad(eager_loss, list(net.parameters()))
            loss = compiled(net, x, labels)
            grads = torch.autograd.grad(loss, list(net.parameters()))
            torch.testing.assert_close(loss, eager_loss)
            for got, want in zip(grads, eager_grads, strict=True):
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
            # What callbacks change between steps, in place: sigma, masks, weights.
            with torch.no_grad():
                for layer in net.delay_layers():
                    layer.sigma = 2.0 - 0.5 * step
                    layer.mask[0, step] = False
                    layer.weight.add_(0.01)
