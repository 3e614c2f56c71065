"""Drop-in proof: SpatialDelay between snnTorch and Norse neurons, unchanged, and it trains.

Each example fits a tiny fixed problem (which of two input groups fires more)
for a few Adam steps and checks that the loss goes down. The neurons are the
libraries' own; the only spsnn piece is the delay layer.
"""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import spatial_layers
from spatial_layers import NeuronPositions, SpatialDelay, SpatialDelayCell

STEPS, BATCH, INPUTS, HIDDEN, CLASSES = 20, 16, 6, 12, 2
TRAIN_STEPS = 10


def toy_problem() -> tuple[torch.Tensor, torch.Tensor]:
    """(T, B, C) Poisson spikes; the label says which half of the inputs fires faster."""
    gen = torch.Generator().manual_seed(7)
    labels = torch.arange(BATCH) % CLASSES
    rates = torch.full((BATCH, INPUTS), 0.1)
    rates[labels == 0, : INPUTS // 2] = 0.5
    rates[labels == 1, INPUTS // 2 :] = 0.5
    spikes = (torch.rand(STEPS, BATCH, INPUTS, generator=gen) < rates).float()
    return spikes, labels


def spatial_layers_pair() -> tuple[SpatialDelay, SpatialDelay]:
    torch.manual_seed(0)
    pos_in, pos_hid, pos_out = (
        NeuronPositions(INPUTS, dim=2, scale=3.0),
        NeuronPositions(HIDDEN, dim=2, scale=3.0),
        NeuronPositions(CLASSES, dim=2, scale=3.0),
    )
    first = SpatialDelay(pos_in, pos_hid, max_delay=4, kernel="gauss")
    second = SpatialDelay(pos_hid, pos_out, max_delay=4, kernel="gauss")
    return first, second


def fit(parameters, loss_fn) -> list[float]:
    optimizer = torch.optim.Adam(parameters, lr=0.02)
    losses = []
    for _ in range(TRAIN_STEPS):
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def assert_learns(losses: list[float]) -> None:
    assert all(torch.isfinite(torch.tensor(losses)))
    assert min(losses[-3:]) < 0.7 * losses[0], losses


# --- snnTorch -----------------------------------------------------------------------------------


def snntorch_network():
    """Two SpatialDelay layers, snn.Leaky hidden neurons and a non-resetting snn.Leaky readout."""
    snn = pytest.importorskip("snntorch")
    surrogate = pytest.importorskip("snntorch.surrogate")
    first, second = spatial_layers_pair()
    hidden = snn.Leaky(beta=0.9, spike_grad=surrogate.atan())
    readout = snn.Leaky(beta=0.9, spike_grad=surrogate.atan(), reset_mechanism="none")

    def sequence_loss(x, labels):
        currents = first(x)  # sequence mode over (T, B, C)
        membrane = hidden.reset_mem()
        spikes = []
        for current in currents:
            spike, membrane = hidden(current, membrane)
            spikes.append(spike)
        membrane = readout.reset_mem()
        total = 0.0
        for current in second(torch.stack(spikes)):
            _, membrane = readout(current, membrane)
            total = total + membrane
        return F.cross_entropy(total / STEPS, labels)

    def streaming_loss(x, labels):
        first.reset_state()
        second.reset_state()
        mem_hidden, mem_out = hidden.reset_mem(), readout.reset_mem()
        total = 0.0
        for x_t in x:  # step mode: one time step through the whole network
            spike, mem_hidden = hidden(first.step(x_t), mem_hidden)
            _, mem_out = readout(second.step(spike), mem_out)
            total = total + mem_out
        return F.cross_entropy(total / STEPS, labels)

    # The hidden positions are shared by both layers: one parameter, listed once.
    params = list({id(p): p for m in (first, second) for p in m.parameters()}.values())
    return first, params, sequence_loss, streaming_loss


def test_between_snntorch_leaky_neurons():
    x, labels = toy_problem()
    first, params, sequence_loss, _ = snntorch_network()
    coords_before = first.post.coords.detach().clone()
    assert_learns(fit(params, lambda: sequence_loss(x, labels)))
    assert not torch.equal(first.post.coords, coords_before)  # the geometry learned too


def test_streaming_between_snntorch_leaky_neurons():
    x, labels = toy_problem()
    _, params, sequence_loss, streaming_loss = snntorch_network()
    with torch.no_grad():
        torch.testing.assert_close(streaming_loss(x, labels), sequence_loss(x, labels))
    assert_learns(fit(params, lambda: streaming_loss(x, labels)))


# --- snnTorch's per-step habits: nn.Sequential, init_hidden, utils.reset, TBPTT ------------------


def per_step_sequential():
    """snnTorch's one-liner style: delays and snn.Leaky(init_hidden=True) in nn.Sequential,
    called once per time step; plus the same layers in sequence mode (shared parameters)."""
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(3)
    first = SpatialDelay(INPUTS, HIDDEN, max_delay=4, init_hidden=True)
    second = SpatialDelay(HIDDEN, CLASSES, max_delay=4, init_hidden=True)
    with torch.no_grad():
        first.weight.mul_(3.0)
    net = torch.nn.Sequential(
        first,
        snn.Leaky(beta=0.9, init_hidden=True),
        second,
        snn.Leaky(beta=0.9, init_hidden=True, output=True),
    )
    sequence = [
        SpatialDelay(INPUTS, HIDDEN, max_delay=4),
        SpatialDelay(HIDDEN, CLASSES, max_delay=4),
    ]
    for whole, stepped in zip(sequence, (first, second), strict=True):
        whole.load_state_dict(stepped.state_dict())
    return net, sequence


def run_steps(net, x):
    """snnTorch's loop: one call per step; the output layer gives (spikes, membrane)."""
    spikes, membranes = zip(*(net(x_t) for x_t in x), strict=True)
    return torch.stack(spikes), torch.stack(membranes)


def run_sequence(layers, x):
    """The reference: sequence-mode layers between snn.Leaky neurons driven step by step."""
    snn = pytest.importorskip("snntorch")
    hidden, readout = snn.Leaky(beta=0.9), snn.Leaky(beta=0.9)
    mem = hidden.reset_mem()
    hidden_spikes = []
    for current in layers[0](x):
        spike, mem = hidden(current, mem)
        hidden_spikes.append(spike)
    mem = readout.reset_mem()
    spikes, membranes = [], []
    for current in layers[1](torch.stack(hidden_spikes)):
        spike, mem = readout(current, mem)
        spikes.append(spike)
        membranes.append(mem)
    return torch.stack(spikes), torch.stack(membranes)


def test_per_step_layer_in_snntorch_sequential_equals_the_sequence_layer():
    net, sequence = per_step_sequential()
    x, _ = toy_problem()
    with torch.no_grad():
        spatial_layers.reset(net)
        spikes, membranes = run_steps(net, x)
        want_spikes, want_membranes = run_sequence(sequence, x)
    assert want_spikes.sum() > 0
    assert torch.equal(spikes, want_spikes)
    torch.testing.assert_close(membranes, want_membranes, rtol=0, atol=1e-5)


def test_spatial_layers_reset_between_sequences_as_snntorch_utils_reset():
    net, _ = per_step_sequential()
    x, _ = toy_problem()
    with torch.no_grad():
        spatial_layers.reset(net)
        fresh = run_steps(net, x.flip(0))
        run_steps(net, x)
        spatial_layers.reset(net)  # snnTorch's membranes and spsnn's histories
        again = run_steps(net, x.flip(0))
    assert torch.equal(again[0], fresh[0]) and torch.equal(again[1], fresh[1])


def test_snntorch_utils_reset_alone_after_training_names_spatial_layers_reset():
    utils = pytest.importorskip("snntorch.utils")
    net, _ = per_step_sequential()
    x, labels = toy_problem()
    spatial_layers.reset(net)
    F.cross_entropy(run_steps(net, x)[1].sum(0), labels).backward()
    utils.reset(net)  # zeros snnTorch's membranes, cannot reach spsnn's layers
    with pytest.raises(RuntimeError, match=r"spatial_layers\.reset\(net\)"):
        net(x[0])


def test_truncated_bptt_with_spatial_layers_detach():
    """Chunks of 5 steps, detached between them (snnTorch's detach_hidden habit): the
    second chunk's gradients are those of a run whose first chunk carried no graph."""
    x, labels = toy_problem()
    head, tail = x[:5], x[5:10]

    def tail_gradients(net, first_chunk_with_grad: bool):
        spatial_layers.reset(net)
        if first_chunk_with_grad:
            F.cross_entropy(run_steps(net, head)[1].sum(0), labels).backward()
            spatial_layers.detach(net)
        else:
            with torch.no_grad():
                run_steps(net, head)
        net.zero_grad()
        F.cross_entropy(run_steps(net, tail)[1].sum(0), labels).backward()
        return [p.grad.clone() for p in net.parameters()]

    truncated = tail_gradients(per_step_sequential()[0], True)
    reference = tail_gradients(per_step_sequential()[0], False)
    assert any(g.abs().sum() > 0 for g in truncated)
    for got, want in zip(truncated, reference, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


# --- Norse -------------------------------------------------------------------------------------


def norse_parameters(norse_torch):
    # Norse's defaults integrate with dt = 1 ms; a higher membrane rate lets a
    # 20-step toy sequence reach threshold.
    return norse_torch.LIFParameters(tau_mem_inv=torch.tensor(200.0))


def test_with_norse_lif_over_sequences():
    norse_torch = pytest.importorskip("norse.torch")
    x, labels = toy_problem()
    first, second = spatial_layers_pair()
    hidden = norse_torch.LIF(norse_parameters(norse_torch))
    readout = norse_torch.LI()

    def loss_fn():
        spikes, _ = hidden(first(x) * 4)  # norse modules take (T, B, C) as we do
        membrane, _ = readout(second(spikes))
        return F.cross_entropy(membrane.mean(0) * 4, labels)

    params = list({id(p): p for m in (first, second) for p in m.parameters()}.values())
    assert_learns(fit(params, loss_fn))


def test_cell_inside_norse_sequential_state():
    norse_torch = pytest.importorskip("norse.torch")
    x, labels = toy_problem()
    first, second = spatial_layers_pair()
    scale = torch.nn.Identity()
    model = norse_torch.SequentialState(
        SpatialDelayCell(first),
        norse_torch.LIFCell(norse_parameters(norse_torch)),
        SpatialDelayCell(second),
        norse_torch.LICell(),
        scale,
    )
    # SequentialState passes and returns the delay cell's ring buffer like a neuron state.
    assert model.stateful_layers == [True, True, True, True, False]

    def run_cells(inputs):
        state = None
        outputs = []
        for x_t in inputs:
            y_t, state = model(x_t * 4, state)
            outputs.append(y_t)
        return torch.stack(outputs)

    # Stepping the cells gives the same numbers as the sequence modules.
    with torch.no_grad():
        stepped = run_cells(x)
        spikes, _ = norse_torch.LIF(norse_parameters(norse_torch))(first(x * 4))
        sequence, _ = norse_torch.LI()(second(spikes))
    torch.testing.assert_close(stepped, sequence, rtol=1e-5, atol=1e-6)

    def loss_fn():
        return F.cross_entropy(run_cells(x).mean(0) * 4, labels)

    assert_learns(fit(list(model.parameters()), loss_fn))


# --- import hygiene ----------------------------------------------------------------------------


def test_import_needs_torch_only():
    code = (
        "import sys, spatial_layers; "
        "heavy = ('lightning', 'pytorch_lightning', 'snntorch', 'norse', 'DCLS', 'dcls', 'tonic'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""
