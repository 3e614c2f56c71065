"""SpatialSNN: shapes, shared positions, parameter accounting, recurrence, no state leaks;
torch.compile of a training step and torch.export of the network.

torch.compile runs on CPU with the ``aot_eager`` backend (forward and backward traced by AOT
autograd, no code generation), so the test checks tracing, not the CPU compiler. What a
training run changes between steps (sigma annealing, rewired masks, Dale signs) must
not force a recompile, and the compiled numbers must equal the eager ones. torch.export is
the supported path to a standalone program: an exported SpatialSNN gives the eager
network's numbers on inputs it was not traced with; torch.jit.script, which cannot compile
spsnn's layers, says which paths to take.
"""

from __future__ import annotations

import contextlib
import re

import pytest
import torch
import torch._dynamo
import torch.nn.functional as F

import spatial_layers.networks.population as models
from spatial_layers import (
    Leaky,
    LeakyParameters,
    SpatialDelay,
    count_parameters,
)
from spatial_layers.functional import plan_delayed_linear
from spatial_layers.networks import HiddenPopulation, SpatialSNN
from spatial_layers.networks.norm_leaky import TimeBatchNorm
from spatial_layers.sparsity import assign_dale_signs, set_density
from tests.helpers.recurrent_reference import recurrent_leaky_steps


@pytest.fixture(autouse=True)
def one_intra_op_thread():
    """Overrides the autouse fixture of tests/spatial_layers/conftest.py: these tests (from
    tests/lightning_modules before the move) keep torch's intra-op threads as they were.
    test_fused_recurrent_lif_changes_no_output_bit compares float64 gradients of rounding
    noise to 1e-9; one thread sums them in an order that misses it (1.05e-9)."""
    yield


def spikes(steps=12, batch=3, channels=5, seed=0, rate=0.3):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, channels, generator=generator) < rate).float()


@pytest.mark.parametrize("delays", ["spatial", "free", "none"])
@pytest.mark.parametrize("recurrent", [False, True])
def test_shapes_and_gradients(delays, recurrent):
    net = SpatialSNN(5, 3, [16, 8], delays=delays, max_delay=4, recurrent=recurrent)
    x = spikes()
    out = net.run(x)
    assert out.membrane.shape == (12, 3, 3)
    assert [s.shape for s in out.hidden_spikes] == [(12, 3, 16), (12, 3, 8)]
    assert out.spikes is None
    out.membrane.pow(2).sum().backward()
    assert net.layers[0].weight.grad is not None
    if delays == "spatial":
        assert net.positions[1].coords.grad is not None
    if delays == "free":
        assert net.layers[0].free_delays.grad is not None


def test_one_position_module_per_population_is_shared():
    net = SpatialSNN(5, 3, [16, 8], max_delay=4, recurrent=True)
    pos_in, pos_h1, pos_h2, pos_out = net.positions
    assert net.layers[0].pre is pos_in and net.layers[0].post is pos_h1
    assert net.layers[1].pre is pos_h1 and net.layers[1].post is pos_h2
    assert net.layers[2].pre is pos_h2 and net.layers[2].post is pos_out
    assert net.recurrent_layers[0].pre is pos_h1 and net.recurrent_layers[0].post is pos_h1
    # model.modules() finds every SpatialDelay (callbacks and exporters rely on it)
    assert len([m for m in net.modules() if isinstance(m, SpatialDelay)]) == 5


def test_parameter_count_is_honest():
    # 5 inputs, 60 hidden, 3 outputs in 2-D: weights 5*60 + 60*3, coordinates (5 + 60 + 3) * 2
    net = SpatialSNN(5, 3, [60], dim=2, max_delay=10)
    count = count_parameters(net)
    assert count.weights == 480 and count.coordinates == 136 and count.total == 616
    # the count equals the number of distinct trainable scalars
    assert count.total == sum(p.numel() for p in net.parameters())
    # SpSNN's 4-60-3 network in 3-D: their 621 parameters
    assert count_parameters(SpatialSNN(4, 3, [60], dim=3)).total == 621
    free = count_parameters(SpatialSNN(4, 3, [60], delays="free"))
    assert free.free_delays == free.weights == 420 and free.coordinates == 0
    assert count_parameters(SpatialSNN(4, 3, [60], delays="none")).total == 420


def test_batch_norm_and_dropout_add_what_dcls_has():
    net = SpatialSNN(5, 3, [16], batch_norm=True, dropout=0.4)
    assert isinstance(net.hidden[0].norm, TimeBatchNorm)
    assert net.dropout.p == 0.4
    assert count_parameters(net).other == 2 * 16  # BN scale and shift
    x = spikes(batch=4)
    # BN statistics are shared across time steps: flattening (T, B) gives the same numbers
    currents = torch.randn(6, 4, 16)
    bn = torch.nn.BatchNorm1d(16)
    torch.testing.assert_close(
        net.hidden[0].norm(currents), bn(currents.reshape(24, 16)).reshape(6, 4, 16)
    )
    net(x).sum().backward()


def test_recurrent_loop_matches_recurrent_spatial_lif():
    net = SpatialSNN(5, 3, [16], max_delay=4, recurrent=True, kernel="linear")
    with torch.no_grad():
        net.layers[0].weight.mul_(4)
        net.recurrent_layers[0].weight.mul_(3)
    x = spikes(rate=0.5)
    block = HiddenPopulation(net.layers[0], Leaky(*net.params), recurrent=net.recurrent_layers[0])
    reference = block(x)
    assert reference.sum() > 0
    torch.testing.assert_close(net.run(x).hidden_spikes[0], reference)


def test_recurrent_state_dict_has_no_dead_modules():
    """Keys: the 4 populations' coordinates, seen from the positions list and from each
    of the 5 delay layers (pre and post, shared modules), the network's recorded
    arguments, each hidden population's record of its neuron settings (the one-beta
    LIF's beta among them), and nothing else."""
    net = SpatialSNN(5, 3, [16, 8], max_delay=4, recurrent=True)
    state = net.state_dict()
    coords = [key for key in state if key.endswith("coords")]
    assert len(coords) == 4 + 2 * 5
    assert len({state[key].data_ptr() for key in coords}) == 4
    assert [key for key in state if ".neuron." in key] == [
        "hidden.0.neuron._extra_state", "hidden.1.neuron._extra_state"
    ]  # fmt: skip
    assert state["hidden.0.neuron._extra_state"]["beta"] == net.params.beta
    assert {key.split(".")[0] for key in state} == {
        "positions", "hidden", "readout", "_extra_state"
    }  # fmt: skip


@pytest.mark.parametrize("recurrent", [False, True])
def test_a_state_saved_before_the_blocks_loads_into_its_places(recurrent):
    """spsnn 0.1.0 kept the layers flat (``layers.<l>``, ``recurrent_layers.<h>``,
    ``norms.<h>``): such a state loads, every tensor where it belongs."""
    torch.manual_seed(0)
    arguments = {"max_delay": 4, "recurrent": recurrent, "batch_norm": True, "bias": True}
    trained = SpatialSNN(5, 3, [16, 8], **arguments)
    renames = [
        (r"^hidden\.(\d+)\.synapses\.", r"layers.\1."),
        (r"^readout\.synapses\.", "layers.2."),
        (r"^hidden\.(\d+)\.recurrent\.", r"recurrent_layers.\1."),
        (r"^hidden\.(\d+)\.norm\.", r"norms.\1."),
    ]
    old = {}
    for key, value in trained.state_dict().items():
        if key.endswith(".neuron._extra_state"):
            continue  # the neurons recorded their settings later
        for pattern, target in renames:
            key = re.sub(pattern, target, key)
        old[key] = value
    assert any(key.startswith("layers.2.") for key in old) and not any("hidden" in k for k in old)
    fresh = SpatialSNN(5, 3, [16, 8], **arguments)
    fresh.load_state_dict(old)
    for key, value in trained.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(fresh.state_dict()[key], value), key


def test_a_state_saved_before_the_neurons_recorded_their_settings_loads():
    torch.manual_seed(0)
    trained = SpatialSNN(5, 3, [16, 8], max_delay=4, recurrent=True)
    state = {k: v for k, v in trained.state_dict().items() if ".neuron." not in k}
    fresh = SpatialSNN(5, 3, [16, 8], max_delay=4, recurrent=True)
    fresh.load_state_dict(state)
    x = spikes()
    torch.testing.assert_close(fresh(x), trained(x))


def test_spiking_output_for_spike_count():
    net = SpatialSNN(5, 3, [16], spiking_output=True)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.mul_(5)
    out = net.run(spikes(rate=0.6))
    assert out.spikes is not None and out.spikes.shape == out.membrane.shape
    assert set(out.spikes.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize(
    ("reset", "reset_delay"), [("zero", False), ("zero", True), ("none", True), ("subtract", False)]
)
def test_a_spiking_lif_readout_resets_as_the_network_says(reset, reset_delay):
    """The readout of SpatialSNN(reset=..., spiking_output=True) against a hand-written
    Euler step of the readout's currents (it subtracted one step late, whatever reset said)."""
    torch.manual_seed(0)
    net = SpatialSNN(4, 3, [6], delays="none", max_delay=0, reset=reset, init_gain=4.0,
                     reset_delay=reset_delay, spiking_output=True, readout_beta=0.8)  # fmt: skip
    net.eval()
    x = (torch.rand(40, 5, 4, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    with torch.no_grad():
        out = net.run(x)
        layer = net.layers[-1]
        currents = out.hidden_spikes[-1] @ layer.effective_weight().T
    threshold = float(net.params.threshold)
    membrane, expected = torch.zeros(5, 3), []
    for current in currents:
        v = 0.8 * membrane + current
        if reset_delay:
            before = (membrane > threshold).float()
            v = {"subtract": v - before * threshold, "zero": v * (1 - before), "none": v}[reset]
            spikes, membrane = (v > threshold).float(), v
        else:
            spikes = (v > threshold).float()
            membrane = {"subtract": v - spikes * threshold, "zero": v * (1 - spikes)}[reset]
        expected.append(spikes)
    expected = torch.stack(expected)
    assert float(expected.mean()) > 0.005 and int((out.spikes != expected).sum()) == 0


@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_no_state_leaks_between_batches(recurrent, batch_norm):
    """A batch's output does not depend on the batches that ran before it."""
    net = SpatialSNN(5, 3, [16, 8], max_delay=5, recurrent=recurrent, batch_norm=batch_norm)
    net.eval()  # BN uses running statistics: samples are independent
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.mul_(4)
    first, second = spikes(seed=1, rate=0.6), spikes(seed=2, rate=0.6)
    with torch.no_grad():
        fresh = net.run(second)
        net.run(first)
        after = net.run(second)
        assert sum(s.sum() for s in fresh.hidden_spikes) > 0  # the net is active
        torch.testing.assert_close(after.membrane, fresh.membrane, rtol=0, atol=0)
        # and each sample is independent of the others in its batch
        alone = net.run(second[:, :1])
        torch.testing.assert_close(alone.membrane, fresh.membrane[:, :1])


def test_causal():
    net = SpatialSNN(5, 3, [16], max_delay=4)
    x = spikes(rate=0.5)
    y = net(x)
    x2 = x.clone()
    x2[8:] = 1.0 - x2[8:]
    torch.testing.assert_close(net(x2)[:8], y[:8])


def test_bad_arguments():
    with pytest.raises(ValueError, match="hidden_sizes"):
        SpatialSNN(5, 3, [])
    with pytest.raises(ValueError, match="dropout"):
        SpatialSNN(5, 3, [4], dropout=1.0)
    with pytest.raises(ValueError, match="max_delay"):
        SpatialSNN(5, 3, [4], max_delay=-1)
    with pytest.raises(ValueError, match=r"\(T, B, 5\)"):
        SpatialSNN(5, 3, [4])(torch.zeros(3, 5))


def test_leaky_parameters_are_used():
    net = SpatialSNN(5, 3, [4], beta=0.7, threshold=0.5, readout_beta=0.95)
    assert net.params == LeakyParameters(0.7, 0.5, 2.0)
    assert net.readout_beta == 0.95


def test_run_without_recording_hidden_spikes_gives_the_same_numbers_and_rates():
    net = SpatialSNN(5, 3, [16, 8], max_delay=4, dropout=0.3, init_gain=4.0)
    x = spikes(rate=0.5)
    torch.manual_seed(3)
    full = net.run(x)
    torch.manual_seed(3)
    lean = net.run(x, record_hidden=False)
    assert lean.hidden_spikes == [] and len(full.hidden_spikes) == 2
    torch.testing.assert_close(lean.membrane, full.membrane, rtol=0, atol=0)
    for rate, trace in zip(lean.hidden_rates, full.hidden_spikes, strict=True):
        assert 0 < rate < 1
        torch.testing.assert_close(rate, trace.mean())
    net.eval()
    torch.testing.assert_close(net(x), net.run(x).membrane, rtol=0, atol=0)


@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_network_gradients_equal_those_without_compact_saves(dropout, monkeypatch):
    """Hidden spikes saved as bools (the FFT path at T=1000) change no gradient bit."""

    def run_once():
        torch.manual_seed(0)
        net = SpatialSNN(
            8, 3, [16, 16], max_delay=250, kernel="linear", dropout=dropout, init_gain=4.0
        ).double()
        x = (torch.rand(1000, 2, 8, generator=torch.Generator().manual_seed(1)) < 0.1).double()
        torch.manual_seed(5)
        net.run(x).membrane.pow(2).sum().backward()
        return [p.grad for p in net.parameters()]

    compact = run_once()
    monkeypatch.setattr(models, "binary_saves", lambda x, level: contextlib.nullcontext())
    plain = run_once()
    assert any(g.abs().sum() > 0 for g in compact)
    for got, want in zip(compact, plain, strict=True):
        assert torch.equal(got, want)


def test_fused_batch_norm_and_lif_change_no_bit(monkeypatch):
    """Batch norm and LIF run fused (one (T, B, C) tensor saved per hidden layer, not
    two): output, gradients and running statistics equal those of the modules in turn."""

    def run_once():
        torch.manual_seed(0)
        net = SpatialSNN(
            8, 3, [16, 16], max_delay=40, kernel="linear", batch_norm=True, dropout=0.4
        )
        x = (torch.rand(300, 2, 8, generator=torch.Generator().manual_seed(1)) < 0.3).float()
        torch.manual_seed(5)
        output = net.run(x)
        output.membrane.pow(2).sum().backward()
        return [output.membrane, *output.hidden_spikes, *(p.grad for p in net.parameters())]

    fused = run_once()
    monkeypatch.setattr(models, "normalized_spikes", lambda norm, neuron, x: neuron(norm(x)))
    plain = run_once()
    assert all(spikes.mean() > 0 for spikes in fused[1:3])
    for got, want in zip(fused, plain, strict=True):
        assert torch.equal(got, want)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_fused_recurrent_lif_changes_no_output_bit(batch_norm, monkeypatch):
    """SpatialSNN(recurrent=True) on the fused recurrent LIF: the output and hidden spikes
    of the step loop bit for bit, the gradients to float rounding (in float64: before a
    batch norm, a bias gets a gradient of rounding noise alone)."""

    def run_once():
        torch.manual_seed(0)
        net = SpatialSNN(
            6, 3, [20, 12], max_delay=6, recurrent=True, bias=True, batch_norm=batch_norm
        ).double()
        with torch.no_grad():
            for layer in net.recurrent_layers:
                layer.weight.mul_(3)
        x = (torch.rand(40, 2, 6, generator=torch.Generator().manual_seed(1)) < 0.3).double()
        output = net.run(x)
        output.membrane.pow(2).sum().backward()
        grads = [p.grad for p in net.parameters()]
        return [output.membrane, *output.hidden_spikes], grads

    fused, fused_grads = run_once()
    monkeypatch.setattr(models, "recurrent_leaky", lambda *args: recurrent_leaky_steps(*args[:4]))
    plain, plain_grads = run_once()
    assert all(0 < spikes.mean() < 1 for spikes in fused[1:])
    for got, want in zip(fused, plain, strict=True):
        assert torch.equal(got, want)
    assert any(g.abs().sum() > 0 for g in fused_grads)
    for got, want in zip(fused_grads, plain_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


# --- state dict: a trained network loads into a fresh one exactly ---------------------------------

TRAINED_ARGS = dict(dim=3, max_delay=5, velocity=0.8, recurrent=True, batch_norm=True, bias=True)


def trained_like(**args) -> SpatialSNN:
    """A network whose training changed every state it has: tensors, sigma, kernel kind,
    weight bits, masks, Dale signs and batch-norm statistics."""
    from spatial_layers.sparsity import assign_dale_signs, set_density

    net = SpatialSNN(5, 3, [8], **(TRAINED_ARGS | args))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in net.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.3)
    for layer in net.delay_layers():
        layer.sigma = 0.7
        layer.kernel_kind = "round"  # as RoundDelays leaves it
        layer.weight_bits = 4
        set_density(layer, 0.6, generator)
    assign_dale_signs(net.layers[1], 0.8, generator)
    net.train()
    net.run(spikes(seed=2))  # batch-norm running statistics move
    return net.eval()


def test_trained_state_into_a_fresh_network_reproduces_the_output():
    trained = trained_like()
    fresh = SpatialSNN(5, 3, [8], **TRAINED_ARGS)
    fresh.load_state_dict(trained.state_dict())
    fresh.eval()
    x = spikes(seed=3, rate=0.6)
    want, got = trained.run(x), fresh.run(x)
    torch.testing.assert_close(got.membrane, want.membrane, rtol=0, atol=0)
    for ours, theirs in zip(got.hidden_spikes, want.hidden_spikes, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    assert [(lay.kernel_kind, lay.weight_bits) for lay in fresh.delay_layers()] == [
        ("round", 4)
    ] * 3
    assert isinstance(trained.state_dict()["_extra_state"], dict)  # plain data (weights_only)


@pytest.mark.parametrize(
    ("other", "named"),
    [
        (dict(beta=0.8), "beta=0.9 (this network: 0.8)"),
        (dict(threshold=2.0), "threshold=1.0 (this network: 2.0)"),
        (dict(readout_beta=0.5), "readout_beta=None (this network: 0.5)"),
        (dict(max_delay=6), "max_delay=5 (this network: 6)"),
        (dict(dim=2), "dim=3 (this network: 2)"),
    ],
)
def test_trained_state_into_a_network_built_otherwise_names_the_setting(other, named):
    fresh = SpatialSNN(5, 3, [8], **(TRAINED_ARGS | other))
    with pytest.raises(RuntimeError, match=re.escape(named)):
        fresh.load_state_dict(trained_like().state_dict())


def test_initialisation_only_arguments_may_differ():
    fresh = SpatialSNN(5, 3, [8], **TRAINED_ARGS, init_gain=3.0, position_init="normal")
    fresh.load_state_dict(trained_like().state_dict())


# --- torch.compile: one graph (fullgraph=True), no recompiles -------------------------------------

COMPILE_CASES = {
    # T=100, 64 channels, 26 taps: the planner takes the whole-sequence DFT path.
    "gauss-dft": (100, dict(max_delay=25, batch_norm=True, dropout=0.0)),
    "linear-fft": (400, dict(max_delay=60, kernel="linear")),
    "round-free": (30, dict(max_delay=5, kernel="round", delays="free")),
    "recurrent": (20, dict(max_delay=5, recurrent=True)),
    "spiking-output": (20, dict(max_delay=5, spiking_output=True, delays="none")),
}


def loss_of(net: SpatialSNN, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(net.run(x).membrane.mean(0), labels)


@pytest.mark.parametrize("case", COMPILE_CASES)
def test_training_step_compiles_to_one_graph_without_recompiles(case):
    steps, options = COMPILE_CASES[case]
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


# --- torch.export, the supported path to a standalone program ----------------------------------

EXPORT_CASES = {
    "spatial-gauss": dict(batch_norm=True),
    "free-round": dict(kernel="round", delays="free"),
    "recurrent": dict(recurrent=True),
    "spiking-output": dict(spiking_output=True, delays="none"),
}


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_exported_network_equals_the_eager_one(case):
    torch.manual_seed(0)
    net = SpatialSNN(5, 3, [16], max_delay=4, init_gain=3.0, **EXPORT_CASES[case]).eval()
    traced_with, other = (torch.rand(2, 20, 2, 5) < 0.3).float()
    program = torch.export.export(net, (traced_with,)).module()
    for x in (traced_with, other):
        assert torch.equal(program(x), net(x))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_torch_jit_script_names_the_supported_paths():
    with pytest.raises(TypeError, match=r"torch\.compile.*torch\.export"):
        torch.jit.script(SpatialSNN(5, 3, [8], max_delay=3))
