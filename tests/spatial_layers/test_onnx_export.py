"""ONNX export (spatial_layers.onnx_export.to_onnx) run by onnxruntime, against eager.

The LIF loops become ONNX Scans over a dynamic T: the program runs sequences of other
lengths and batch sizes than it was traced with. The scans are first checked in torch
against the custom ops they stand for (the same bits).
"""

from __future__ import annotations

import pytest
import torch

from spatial_layers import SpatialDelay, SpatialSNN
from spatial_layers.neurons import Leaky, LeakyParameters, leaky_sequence
from spatial_layers.neurons.recurrent import recurrent_leaky
from spatial_layers.ops.scan import leaky_forward_scan, loops_as_scan

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from spatial_layers.onnx_export import to_onnx  # noqa: E402

TRACED = (12, 5)
OTHERS = ((2, 1), (3, 4), (40, 3))


def run_onnx(path, x: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def spikes_in(steps: int, batch: int, channels: int, batch_first: bool = False):
    shape = (batch, steps, channels) if batch_first else (steps, batch, channels)
    return (torch.rand(*shape) < 0.4).float()


def test_the_scans_are_the_ops_bit_for_bit(rng):
    currents = torch.randn(9, 3, 4, generator=rng) * 2
    membrane = torch.rand(3, 4, generator=rng) * 2
    params = LeakyParameters(0.8, 0.7, 2.0)
    want = leaky_sequence(currents, params, membrane, backend="torch")
    got = leaky_forward_scan(currents, membrane, 0.8, 0.7, True)
    assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
    kernel = torch.randn(4, 4, 3, generator=rng) * 0.5
    bias = torch.randn(4, generator=rng) * 0.1
    want = recurrent_leaky(currents, kernel, bias, params, backend="torch")
    with loops_as_scan():
        got = recurrent_leaky(currents, kernel, bias, params, backend="torch")
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-6)  # F.linear vs addmm rounding


def test_a_neuron_gives_the_same_spikes(tmp_path, rng):
    """The LIF alone: the same operations per step, so the same spikes exactly."""
    neuron = Leaky(0.8, 0.7).eval()
    to_onnx(neuron, torch.randn(*TRACED, 6, generator=rng), tmp_path / "lif.onnx")
    for steps, batch in OTHERS:
        currents = torch.randn(steps, batch, 6, generator=rng) * 2
        assert torch.equal(run_onnx(tmp_path / "lif.onnx", currents), neuron(currents))


@pytest.mark.parametrize("options", [{"kernel": "gauss"}, {"kernel": "round", "bias": True}])
def test_a_layer(options, tmp_path):
    torch.manual_seed(0)
    layer = SpatialDelay(4, 3, max_delay=6, **options).eval()
    to_onnx(layer, spikes_in(*TRACED, 4), tmp_path / "layer.onnx")
    for steps, batch in OTHERS:
        x = spikes_in(steps, batch, 4)
        got = run_onnx(tmp_path / "layer.onnx", x)
        torch.testing.assert_close(got, layer(x).detach(), rtol=1e-5, atol=1e-5)


CASES = {
    "spatial-gauss-batch-norm": dict(batch_norm=True, dropout=0.3),
    "free-round": dict(kernel="round", delays="free"),
    "recurrent": dict(recurrent=True),
    "spiking-output": dict(spiking_output=True, delays="none"),
    "two-layers-linear": dict(hidden_sizes=[8, 6], kernel="linear", bias=True),
    "batch-first": dict(batch_first=True),
}


@pytest.mark.parametrize("case", CASES)
def test_a_network(case, tmp_path):
    """The readout membranes equal eager's to float rounding (ORT's Conv sums in another
    order than torch's)."""
    torch.manual_seed(0)
    options = {"hidden_sizes": [16], **CASES[case]}
    net = SpatialSNN(5, 3, max_delay=4, init_gain=3.0, **options).eval()
    batch_first = net.batch_first
    to_onnx(net, spikes_in(*TRACED, 5, batch_first), tmp_path / "net.onnx")
    for steps, batch in OTHERS:
        x = spikes_in(steps, batch, 5, batch_first)
        got = run_onnx(tmp_path / "net.onnx", x)
        torch.testing.assert_close(got, net(x).detach(), rtol=1e-5, atol=1e-5)


def test_a_training_network_is_refused_by_name():
    with pytest.raises(ValueError, match=r"training mode.*module\.eval\(\)"):
        to_onnx(SpatialSNN(5, 3, [8], max_delay=3), spikes_in(*TRACED, 5))


def test_a_dynamic_time_needs_two_steps():
    with pytest.raises(ValueError, match=r"T >= 2.*T=1"):
        to_onnx(SpatialSNN(5, 3, [8], max_delay=3).eval(), spikes_in(1, 2, 5))


def test_a_dynamic_batch_needs_two_samples_and_a_static_one_exports_a_batch_of_one():
    """torch.export fixes a dimension of size 1: an example batch of 1 is refused by name
    (not torch's 'Constraints violated (B)'); with dynamic=False it exports."""
    net = SpatialSNN(5, 3, [8], max_delay=3).eval()
    x = spikes_in(4, 1, 5)
    with pytest.raises(ValueError, match=r"B >= 2.*B=1.*dynamic=False"):
        to_onnx(net, x)
    got = to_onnx(net, x, dynamic=False)(x)
    torch.testing.assert_close(got[0] if isinstance(got, list | tuple) else got, net(x))


def test_torch_onnx_export_itself_writes_the_loops_as_scans(tmp_path):
    """Without to_onnx: torch.onnx.export(dynamo=True) of a feed-forward network."""
    from spatial_layers.onnx_export import dynamic_shapes

    torch.manual_seed(0)
    net = SpatialSNN(5, 3, [16], max_delay=4, init_gain=3.0).eval()
    x = spikes_in(*TRACED, 5)
    program = torch.onnx.export(net, (x,), dynamo=True, dynamic_shapes=dynamic_shapes(x))
    program.save(tmp_path / "net.onnx")
    other = spikes_in(7, 2, 5)
    got = run_onnx(tmp_path / "net.onnx", other)
    torch.testing.assert_close(got, net(other).detach(), rtol=1e-5, atol=1e-5)
