"""The settings of a neuron population travel with its state dict.

Threshold, surrogate slope, reset and the adLIF scale change what the neurons compute but
are not tensors: a state saved with one threshold loaded silently into neurons built with
another, which then fired at the other threshold.
"""

from __future__ import annotations

import io

import pytest
import torch

from spatial_layers import AdaptiveLeaky, Leaky, Synaptic


@pytest.mark.parametrize(
    ("saved", "built", "named"),
    [
        (lambda: Leaky(0.5, 2.0, size=3), lambda: Leaky(0.5, 1.0, size=3), "threshold=2.0"),
        (lambda: Leaky(0.5, size=3, alpha=5.0), lambda: Leaky(0.5, size=3), "surrogate_alpha"),
        (lambda: Leaky(0.5, size=3, reset="zero"), lambda: Leaky(0.5, size=3), "reset='zero'"),
        (
            lambda: Synaptic(0.8, 0.5, size=3, reset_delay=False),
            lambda: Synaptic(0.8, 0.5, size=3),
            "reset_delay=False",
        ),
        (lambda: AdaptiveLeaky(3, scale=10.0), lambda: AdaptiveLeaky(3), "scale=10.0"),
        # The one-beta LIF holds no tensor: its record carries beta and the rest.
        (lambda: Leaky(0.5), lambda: Leaky(0.7), r"beta=0.5 \(these neurons: 0.7\)"),
        (lambda: Leaky(0.5, 2.0), lambda: Leaky(0.5), "threshold=2.0"),
        (lambda: Leaky(0.5, alpha=5.0), lambda: Leaky(0.5), "surrogate_alpha=5.0"),
        (lambda: Leaky(0.5, reset="zero"), lambda: Leaky(0.5), "reset='zero'"),
        (lambda: Leaky(0.5, reset_delay=False), lambda: Leaky(0.5), "reset_delay=False"),
    ],
)
def test_a_state_saved_with_other_settings_is_refused_naming_them(saved, built, named):
    with pytest.raises(RuntimeError, match=named):
        built().load_state_dict(saved().state_dict())


def test_a_state_loads_into_neurons_with_its_settings_through_a_weights_only_file():
    neuron = Leaky([0.5, 0.9], 1.5, size=4, learn_beta=True, reset="zero")
    buffer = io.BytesIO()
    torch.save(neuron.state_dict(), buffer)
    buffer.seek(0)
    fresh = Leaky([0.5, 0.9], 1.5, size=4, learn_beta=True, reset="zero")
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    currents = torch.rand(6, 2, 4) * 2
    assert torch.equal(fresh(currents), neuron(currents))


def test_a_state_saved_before_the_settings_were_recorded_loads():
    neuron = Synaptic(0.8, 0.5, size=3)
    state = {k: v for k, v in neuron.state_dict().items() if not k.endswith("_extra_state")}
    Synaptic(0.8, 0.5, size=3).load_state_dict(state)


def test_the_one_beta_lif_records_its_settings_and_no_tensor():
    state = Leaky(0.5, 1.5, alpha=3.0).state_dict()
    assert list(state) == ["_extra_state"]
    assert state["_extra_state"] == {
        "family": "lif", "threshold": 1.5, "surrogate_alpha": 3.0, "reset": "subtract",
        "reset_delay": True, "beta": 0.5,
    }  # fmt: skip
    Leaky(0.5, 1.5, alpha=3.0).load_state_dict(state)
    Leaky(0.7).load_state_dict({})  # saved before it recorded them: loads as then


FAMILIES = [
    lambda backend: Leaky(0.5, size=3, backend=backend),
    lambda backend: Synaptic(0.8, 0.5, size=3, learn_beta=True, backend=backend),
    lambda backend: AdaptiveLeaky(3, backend=backend),
]


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("make", FAMILIES)
def test_a_sequence_of_no_steps_gives_empty_outputs_and_keeps_the_state(make, backend):
    """As the one-beta LIF does; the per-neuron op failed to infer its batch from T = 0."""
    if backend == "triton":
        pytest.importorskip("triton")
    neuron = make(backend)
    currents = torch.zeros(0, 2, 3, requires_grad=True)
    _, initial = neuron.cell_forward(torch.rand(2, 3) * 3)
    spikes, membranes, state = neuron.sequence(currents, initial)
    (spikes.sum() + membranes.sum()).backward()
    assert spikes.shape == membranes.shape == currents.grad.shape == (0, 2, 3)
    assert all(torch.equal(a, b) for a, b in zip(state, initial, strict=True))


@pytest.mark.parametrize("neuron", [Leaky(0.5), Leaky(0.5, size=3)])
@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_integer_or_bool_currents_are_refused_naming_the_fix(neuron, dtype):
    with pytest.raises(ValueError, match=f"currents must be floating point, got {dtype}"):
        neuron(torch.ones(4, 2, 3, dtype=dtype))


@pytest.mark.parametrize(
    ("saved", "built", "named"),
    [
        # read as "beta=None (these neurons: 0.5)" before: no hint of size=
        (
            lambda: Leaky([0.3, 0.8], size=3),
            lambda: Leaky(0.5),
            r"per-neuron constants for 3 neurons \(these neurons: one constant beta=0.5; "
            r"build them with size=3\)",
        ),
        (lambda: Leaky(0.5, size=4, learn_beta=True), lambda: Leaky(0.5), "with size=4"),
        # the reverse was a bare 'Missing key(s) in state_dict: "values"'
        (
            lambda: Leaky(0.5),
            lambda: Leaky([0.3, 0.8], size=3),
            r"one constant beta=0.5 \(these neurons: per-neuron constants; build them with a "
            r"number beta and no size",
        ),
        (lambda: Leaky(0.5), lambda: Leaky(0.5, reset="zero"), r"one constant .*reset='subtract'"),
    ],
)
def test_a_one_beta_state_and_a_per_neuron_one_name_the_layout_and_the_fix(saved, built, named):
    with pytest.raises(RuntimeError, match=named) as error:
        built().load_state_dict(saved().state_dict())
    assert "beta=None" not in str(error.value) and "Missing key" not in str(error.value)
