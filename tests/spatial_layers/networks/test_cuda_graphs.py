"""Graph-captured training steps: when to capture again, what runs eagerly, what is refused.

Without a GPU the capture function is a stand-in that runs the same warm-up passes as
``torch.cuda.make_graphed_callables`` and returns the module (no graph), so the
re-capture rules, the eager fallbacks and the buffer restore are tested on CPU. With a
GPU the real capture runs and its numbers are compared with the eager step.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils._pytree import tree_leaves
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.classifier import SpikingClassifier
from spatial_layers.networks import SpatialSNN
from spatial_layers.networks.cuda_graphs import GraphedNetwork, check_cuda_graphs, graph_signature
from spatial_layers.sparsity import assign_dale_signs
from tests.helpers.hardware import small_net

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class StandInCapture:
    """Runs ``num_warmup_iters`` + 1 training forwards, as the real capture does, and
    asks of the outputs what it asks: tensors only (no None, no other objects)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, module, sample_args, num_warmup_iters):
        self.calls += 1
        for _ in range(num_warmup_iters + 1):
            outputs = tree_leaves(module(*sample_args))
            assert all(isinstance(output, torch.Tensor) for output in outputs), outputs
        return module


def network(**options) -> SpatialSNN:
    torch.manual_seed(0)
    return SpatialSNN(6, 3, [12], max_delay=4, batch_norm=True, init_gain=3.0, **options)


def batch(size: int = 4, steps: int = 15) -> torch.Tensor:
    return (torch.rand(steps, size, 6, generator=torch.Generator().manual_seed(size)) < 0.3).float()


def test_captures_once_while_only_values_change():
    net = network()
    capture = StandInCapture()
    graphed = GraphedNetwork(net, make_graphed=capture)
    x = batch()
    for step in range(4):
        graphed(x)
        with torch.no_grad():  # what sigma annealing, rewiring and the optimizer do
            for layer in net.delay_layers():
                layer.sigma = 3.0 - step * 0.5
                layer.mask[0, step] = False
                layer.weight.mul_(0.99)
    assert capture.calls == graphed.captures == 1


@pytest.mark.parametrize(
    "change",
    [
        lambda net: setattr(net.layers[0], "kernel_kind", "round"),
        lambda net: setattr(net.layers[1], "weight_bits", 4),
        lambda net: assign_dale_signs(net.layers[0], 0.8, torch.Generator().manual_seed(0)),
        lambda net: setattr(net.layers[0], "mask", net.layers[0].mask.clone()),
        lambda net: net.layers[0].weight.requires_grad_(False),
        lambda net: setattr(net.dropout, "p", 0.3),
        lambda net: setattr(net.layers[1], "velocity", 2.0),
        lambda net: setattr(net, "params", net.params._replace(beta=0.8)),
    ],
    ids=[
        "kernel",
        "weight_bits",
        "dale",
        "replaced-mask",
        "frozen-weight",
        "dropout",
        "velocity",
        "lif-beta",
    ],
)
def test_captures_again_when_the_computation_changes(change):
    net = network()
    capture = StandInCapture()
    graphed = GraphedNetwork(net, make_graphed=capture)
    x = batch()
    graphed(x)
    before = graph_signature(net, x)
    change(net)
    assert graph_signature(net, x) != before
    graphed(x)
    graphed(x)
    assert capture.calls == 2


@pytest.mark.parametrize("options", [{}, {"spiking_output": True}, {"recurrent": True}])
def test_graphed_output_is_the_networks_output(options):
    net = network(**options)
    x = batch()
    output = GraphedNetwork(net, make_graphed=StandInCapture())(x)
    reference = net.run(x)
    torch.testing.assert_close(output.membrane, reference.membrane)
    assert (output.spikes is None) == (reference.spikes is None)
    if reference.spikes is not None:
        torch.testing.assert_close(output.spikes, reference.spikes)
    assert output.hidden_spikes == []  # not recorded: freed as soon as read
    assert len(output.hidden_rates) == len(reference.hidden_rates) == 1
    torch.testing.assert_close(output.hidden_rates[0], reference.hidden_spikes[0].mean())


def test_batch_of_another_shape_and_evaluation_run_eagerly():
    net = network()
    graphed = GraphedNetwork(net, make_graphed=StandInCapture())
    graphed(batch(4))
    with pytest.warns(UserWarning, match=r"shape \(15, 3, 6\).*drop_last"):
        smaller = graphed(batch(3))
    graphed(batch(3))
    assert graphed.eager_batches == 2 and graphed.captures == 1
    torch.testing.assert_close(smaller.membrane, net.run(batch(3)).membrane)
    net.eval()
    graphed(batch(5))
    assert graphed.captures == 1


def test_capture_gives_back_the_batch_norm_statistics_it_moved():
    net = network()
    norm = net.hidden[0].norm
    before = (norm.running_mean.clone(), norm.running_var.clone(), norm.num_batches_tracked.clone())
    GraphedNetwork(net, make_graphed=StandInCapture())._capture(batch())
    after = (norm.running_mean, norm.running_var, norm.num_batches_tracked)
    for old, new in zip(before, after, strict=True):
        assert torch.equal(old, new)


def test_bad_warmup_and_cpu_fit_are_refused(tmp_path):
    with pytest.raises(ValueError, match="warmup must be >= 1"):
        GraphedNetwork(network(), warmup=0)
    model = SpikingClassifier(SpatialSNN(6, 3, [8], max_delay=3), cuda_graphs=True)
    x = batch(8).transpose(0, 1).contiguous()
    loader = DataLoader(TensorDataset(x, torch.randint(0, 3, (8,))), batch_size=4)
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    with pytest.raises(
        ValueError, match=r"cuda_graphs needs a CUDA device, but the model is on cpu"
    ):
        trainer.fit(model, loader)


@needs_cuda
def test_graphed_step_equals_the_eager_step_on_a_gpu():
    net = network().cuda()
    x = batch().cuda()
    labels = torch.tensor([0, 1, 2, 0], device="cuda")
    graphed = GraphedNetwork(net)
    for step in range(3):
        eager = F.cross_entropy(net.run(x).membrane.mean(0), labels)
        eager_grads = torch.autograd.grad(eager, list(net.parameters()))
        loss = F.cross_entropy(graphed(x).membrane.mean(0), labels)
        grads = torch.autograd.grad(loss, list(net.parameters()))
        torch.testing.assert_close(loss, eager)
        for got, want in zip(grads, eager_grads, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
        for layer in net.delay_layers():
            layer.sigma = 2.0 - 0.5 * step
    net.layers[0].kernel_kind = "round"
    eager = net.run(x).membrane
    torch.testing.assert_close(graphed(x).membrane, eager)
    assert graphed.captures == 2


def test_cuda_graphs_refuse_a_network_in_a_profile():
    net = small_net()
    net.hardware_profile = "loihi2"
    with pytest.raises(ValueError, match=r"'loihi2' hardware profile.*cuda_graphs false"):
        check_cuda_graphs(torch.device("cuda"), net)
