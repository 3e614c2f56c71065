"""The loihi2 profile of cuba networks: Lava's stock LIF process (CUBA, 12-bit du / dv,
reset to 0), its fixed-point arithmetic in torch against integers, what it refuses, and a
network trained in the profile checked spike for spike by the numpy reference of the
exported program."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spatial_layers.hardware.loihi2 import formats as loihi2
from spatial_layers.hardware.loihi2.profile import network_format
from spatial_layers.hardware.loihi2.reference import run_program
from spatial_layers.networks import SpatialSNN

LAVA_CUBA = dict(neuron="cuba", alpha=0.5, reset="zero", reset_delay=False)


def lava_lif(activations: np.ndarray, du: int, dv: int, vth: int):
    """Lava's PyLifModelBitAcc on (T, B, C) integer synaptic inputs (already shifted):
    spikes and voltages, written from Lava's update (ds_offset 1, wrap, saturation)."""
    u = np.zeros(activations.shape[1:], np.int64)
    v = np.zeros_like(u)
    spikes, voltages = [], []
    for a in activations:
        decayed = u * (4096 - (du + 1))
        u = np.sign(decayed) * (np.abs(decayed) >> 12) + a
        u = np.where(u > 2**23, u - 2**24, u)
        u = np.where(u <= -(2**23), u + 2**24, u)
        decayed = v * (4096 - dv)
        v = np.clip(np.sign(decayed) * (np.abs(decayed) >> 12) + u, -(2**23) + 1, 2**23 - 1)
        fired = v > vth << 6
        voltages.append(v.copy())
        spikes.append(fired)
        v = np.where(fired, 0, v)
    return np.stack(spikes), np.stack(voltages)


def test_current_decay_has_12_bits_and_the_chip_s_offset():
    assert loihi2.current_decay_code(0.5) == 2047
    assert loihi2.current_decay_code(0.0) == 4095  # the current lasts one step
    assert loihi2.current_decay_factor(0) == 4095 / 4096  # du = 0 still decays
    with pytest.raises(ValueError, match="at most 4095/4096"):
        loihi2.current_decay_code(0.99999)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        loihi2.current_decay_code(1.0)


@pytest.mark.parametrize(("du", "dv"), [(2047, 205), (100, 1000), (4095, 0)])
def test_fixed_point_cuba_is_lava_s_integer_arithmetic(du, dv):
    bits, vth = 12, 2**6
    generator = np.random.default_rng(0)
    activations = generator.integers(-(2**11), 2**12, size=(50, 3, 7))
    activations[10:12] = 2**22  # overflow the current: Lava wraps it around
    spikes, voltages = lava_lif(activations, du, dv, vth)
    currents = torch.from_numpy(activations * 2.0**-bits).float()
    got_spikes, got_voltages = loihi2.fixed_point_synaptic(
        currents, current_decay=du, decay=dv, bits=bits, threshold=vth
    )
    assert 0.05 < spikes.mean() < 0.95
    assert np.array_equal(got_spikes.numpy().astype(bool), spikes)
    assert np.array_equal(got_voltages.double().numpy() * 2.0**bits, voltages)


def test_fixed_point_cuba_passes_gradients_straight_through():
    currents = torch.randn(20, 2, 4).mul(0.4).add(0.2).mul(2**10).round().div(2**10)
    currents.requires_grad_()
    spikes, voltages = loihi2.fixed_point_synaptic(
        currents, current_decay=2047, decay=205, bits=10, threshold=16
    )
    (spikes.sum() + voltages.sum()).backward()
    assert torch.isfinite(currents.grad).all() and currents.grad.abs().sum() > 0


def small_net(**kwargs) -> SpatialSNN:
    torch.manual_seed(0)
    arguments = {"max_delay": 8, "beta": 0.95, "init_gain": 5.0, **LAVA_CUBA} | kwargs
    return SpatialSNN(5, 3, [16, 12], **arguments)


@pytest.mark.parametrize(
    ("arguments", "fix"),
    [
        ({"reset": "subtract", "reset_delay": True}, "reset='zero', reset_delay=False"),
        ({"learn_beta": True}, "learn_beta=False"),
        ({"alpha": [0.4, 0.6]}, "a number alpha and beta"),
        ({"neuron": "adlif", "alpha": None, "reset": None, "reset_delay": None}, "adaptation"),
        ({"neuron": "lif", "alpha": None}, "reset, reset_delay"),
    ],
)
def test_what_the_profile_cannot_run_is_refused_with_the_fix(arguments, fix):
    net = small_net(**arguments)
    with pytest.raises(ValueError, match="does not fit the loihi2 profile") as error:
        net.hardware_profile = "loihi2"
    assert fix in str(error.value)


def test_formats_hold_lava_s_current_decay():
    formats = network_format(small_net())
    assert [p.current_decay for p in formats.populations] == [2047, 2047, None]
    assert formats.populations[0].alpha == 0.5


def graded_input(seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mask = torch.rand(40, 8, 5, generator=generator) < 0.3
    return mask * torch.rand(40, 8, 5, generator=generator)


def test_trained_in_the_profile_the_exported_program_spikes_as_the_network():
    """A few optimizer steps in the profile (gradients through Lava's arithmetic), then
    the graph written for Loihi 2 (CubaLIF nodes holding du, dv, vth and the 8-bit
    mantissas) runs in the integer reference with every spike equal."""
    pytest.importorskip("nir")
    from spatial_layers.nir import to_nir
    from spatial_layers.nir.loihi2 import load_program

    net = small_net()
    net.hardware_profile = "loihi2"
    x = graded_input()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in net.parameters()]
    for _ in range(3):
        optimizer.zero_grad()
        net.run(x).membrane.pow(2).mean().backward()
        optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    with torch.no_grad():
        output = net.eval().run(x)
    graph = to_nir(net, target="loihi2")
    assert type(graph.nodes["hidden_0"]).__name__ == "CubaLIF"
    assert graph.nodes["hidden_0"].metadata["loihi2"]["current_decay"] == 2047
    program = load_program(graph)
    reference = run_program(program, x.numpy())
    for index, name in enumerate(["hidden_0", "hidden_1"]):
        ours = output.hidden_spikes[index].numpy().astype(bool)
        assert 0.02 < ours.mean() < 0.6
        assert int((reference.spikes[name] != ours).sum()) == 0
    bits = program.populations[-1].fraction_bits
    assert np.array_equal(reference.membranes["readout"] * 2.0**-bits, output.membrane.numpy())
    assert reference.saturations == reference.wraps == 0
