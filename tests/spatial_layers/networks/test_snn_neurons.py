"""SpatialSNN's neuron families (``neuron=``, ``learn_beta=`` and the family constants):
arguments checked and recorded, the LIF's numbers unchanged, checkpoints that load (also
those saved before the arguments existed), recurrence, torch.compile with one graph."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
import torch.nn.functional as F

from spatial_layers.networks import SpatialSNN
from spatial_layers.neurons import AdaptiveLeaky, Leaky, Synaptic
from spatial_layers.neurons.recurrent import recurrent_leaky

FAMILIES = {
    "lif": dict(neuron="lif"),
    "lif-learned": dict(neuron="lif", learn_beta=True),
    "cuba": dict(neuron="cuba", alpha=0.6),
    "cuba-learned": dict(neuron="cuba", learn_beta=True, reset="zero", reset_delay=False),
    "adlif": dict(neuron="adlif", beta=[0.8, 0.95], learn_beta=True, init_gain=12.0),
}


def spikes(steps=30, batch=3, inputs=5, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, inputs, generator=generator) < 0.3).float()


def build(case: str, **extra) -> SpatialSNN:
    torch.manual_seed(0)
    arguments = {"max_delay": 4, "init_gain": 4.0} | FAMILIES[case] | extra
    return SpatialSNN(5, 3, [12, 8], **arguments)


def test_each_family_builds_its_neurons():
    kinds = {"lif": Leaky, "cuba": Synaptic, "adlif": AdaptiveLeaky}
    for case, arguments in FAMILIES.items():
        net = build(case)
        assert all(isinstance(b.neuron, kinds[arguments["neuron"]]) for b in net.hidden)
        assert net.init_args["neuron"] == arguments["neuron"]
        learned = arguments.get("learn_beta", False)
        assert (net.parameter_count().other > 0) == learned
        output = net.run(spikes())
        assert 0 < float(output.hidden_rates[0]) < 1


def test_the_default_lif_is_the_lif_it_was():
    """Same tensors in the state dict as before the families (the neurons add only their
    settings' record), and the LIF of before in a loop."""
    net = build("lif")
    neuron_keys = [key for key in net.state_dict() if "neuron" in key]
    assert neuron_keys and all(key.endswith("neuron._extra_state") for key in neuron_keys)
    assert net.hidden[0].neuron.legacy and net.params.beta == 0.9
    x = spikes()
    with torch.no_grad():
        currents = net.layers[0](x)
        want = recurrent_leaky(currents, torch.zeros(12, 12, 1), None, net.params, "torch")[0]
        assert torch.equal(net.run(x).hidden_spikes[0], want)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"neuron": "izhikevich"}, "neuron must be one of"),
        ({"alpha": 0.5}, "alpha applies to neuron='cuba'"),
        ({"adaptation_jump": 1.0}, "adaptation_jump applies to neuron='adlif'"),
        ({"neuron": "adlif", "reset": "subtract"}, "resets to zero at once"),
        ({"neuron": "cuba", "alpha": 1.5}, "alpha .* must be"),
        ({"beta": [0.9, 0.8]}, "beta as a range"),
        ({"neuron": "cuba", "reset": "soft"}, "reset must be"),
        ({"learn_beta": "yes"}, "learn_beta must be"),
        ({"neuron": "adlif", "adaptation_scale": 0}, "adaptation_scale"),
    ],
)
def test_arguments_are_checked_with_one_line_naming_them(arguments, message):
    with pytest.raises(ValueError, match=message) as error:
        SpatialSNN(5, 3, [4], **arguments)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("case", FAMILIES)
def test_a_trained_state_loads_into_a_fresh_network_exactly(case):
    net = build(case, recurrent=True)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    fresh = build(case, recurrent=True)
    fresh.load_state_dict(net.state_dict())
    x = spikes()
    assert torch.equal(fresh.run(x).membrane, net.run(x).membrane)


def test_a_state_of_another_family_is_refused_naming_it():
    state = build("cuba").state_dict()
    with pytest.raises(RuntimeError, match="neuron='cuba' \\(this network: 'adlif'\\)"):
        build("adlif").load_state_dict(state)


def test_a_state_saved_before_the_families_loads():
    """A checkpoint of an older spsnn has none of the new arguments in its record."""
    net = build("lif")
    state = net.state_dict()
    new = {"neuron", "learn_beta", "alpha", "reset", "reset_delay", "adaptation_decay",
           "adaptation_coupling", "adaptation_jump", "adaptation_scale"}  # fmt: skip
    state["_extra_state"] = {k: v for k, v in state["_extra_state"].items() if k not in new}
    build("lif").load_state_dict(state)


@pytest.mark.parametrize("case", ["cuba", "adlif", "lif-learned"])
def test_recurrent_families_train(case):
    net = build(case, recurrent=True, bias=True)
    output = net.run(spikes())
    loss = F.cross_entropy(output.membrane.mean(0), torch.tensor([0, 1, 2]))
    loss.backward()
    recurrent = net.recurrent_layers[0]
    assert recurrent.weight.grad.abs().sum() > 0
    if net.hidden[0].neuron.raw is not None:
        assert net.hidden[0].neuron.raw.grad.abs().sum() > 0


@pytest.mark.parametrize("case", ["cuba", "cuba-learned", "adlif"])
def test_training_step_compiles_to_one_graph(case, monkeypatch):
    """The fused neuron ops (custom ops inside autograd Functions) trace into one graph.

    The layers' input check reads the input on the host off CUDA (``bool(bad.any())``),
    which fullgraph refuses on CPU: it is skipped here, as it is on CUDA (a device flag).
    """
    from spatial_layers import finite

    monkeypatch.setattr(finite, "describe", lambda x: None)
    net = build(case, batch_norm=True, recurrent=case == "adlif")
    x, labels = spikes(), torch.tensor([0, 2, 1])

    def loss_of(net, x, labels):
        return F.cross_entropy(net.run(x).membrane.mean(0), labels)

    torch._dynamo.reset()
    compiled = torch.compile(loss_of, fullgraph=True, backend="aot_eager")
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(2):
            eager = torch.autograd.grad(loss_of(net, x, labels), list(net.parameters()))
            got = torch.autograd.grad(compiled(net, x, labels), list(net.parameters()))
            for a, b in zip(got, eager, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
            with torch.no_grad():
                net.layers[0].weight.mul_(1.01)


def test_cuda_graph_signature_sees_the_neurons():
    """A captured graph replays a neuron's constants in place (the raw parameter), and
    its settings (reset) are part of what a re-capture compares."""
    from spatial_layers.networks.cuda_graphs import graph_signature

    net = build("cuba-learned")
    x = spikes()
    before = graph_signature(net, x)
    with torch.no_grad():
        net.hidden[0].neuron.raw.add_(0.1)
    assert graph_signature(net, x) == before
    net.hidden[0].neuron.reset = "subtract"
    assert graph_signature(net, x) != before
