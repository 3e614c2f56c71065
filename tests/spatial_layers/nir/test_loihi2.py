"""``--target loihi2``: the chip's values in the graph, the report, and the numpy reference of
the chip against the torch profile, spike for spike (on the Yin-Yang test split too)."""

from __future__ import annotations

import json
import sys

import nir
import numpy as np
import pytest
import torch
from lm_test_probes import quiet_trainer, tiny_yinyang_fit

from lightning_modules.callbacks import HardwareQAT
from lightning_modules.classifier import SpikingClassifier
from lightning_modules.cli import main, make_cli
from lightning_modules.data import YinYangDataModule
from lightning_modules.evaluation import evaluate_profile
from spatial_layers.hardware.loihi2.reference import run_program
from spatial_layers.hardware.loihi2.report import (
    CHIP_CORES,
    CHIP_NEURONS,
    CHIP_SYNAPSES,
    chip_problems,
    format_report,
)
from spatial_layers.networks import SpatialSNN
from spatial_layers.networks.deploy import deployment_network
from spatial_layers.nir import to_nir
from spatial_layers.nir.loihi2 import graph_report, load_program


def profile_net(hidden=(16, 12), seed=0, gain=6.0, **kwargs) -> SpatialSNN:
    torch.manual_seed(seed)
    arguments = {"max_delay": 10, "beta": 0.9, "init_gain": gain, "readout_beta": 0.95} | kwargs
    net = SpatialSNN(5, 3, list(hidden), **arguments)
    net.hardware_profile = "loihi2"
    return net.eval().requires_grad_(False)


def binary_input(steps=40, batch=8, seed=1, rate=0.2, channels=5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, channels, generator=generator) < rate).float()


def compare(net: SpatialSNN, graph: nir.NIRGraph, x: torch.Tensor):
    """(spike mismatches, readout mismatches, spikes compared, the reference's run)."""
    program = load_program(graph)
    reference = run_program(program, x.numpy())
    ours = net.run(x)
    names = [p.name for p in program.populations if p.threshold is not None]
    spikes = sum(
        int((trace.bool().numpy() != reference.spikes[name]).sum())
        for name, trace in zip(names, ours.hidden_spikes, strict=True)
    )
    readout = program.populations[-1]
    scaled = ours.membrane.double().numpy() * 2.0**readout.fraction_bits
    membrane = int((scaled != reference.membranes[readout.name]).sum())
    return spikes, membrane, sum(t.numel() for t in ours.hidden_spikes), reference


def test_graph_holds_the_chips_values():
    net = profile_net()
    graph = to_nir(net, target="loihi2")
    layers = graph.metadata["layers"]
    assert graph.metadata["target"] == "loihi2" and int(graph.metadata["weight_bits"]) == 8
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Linear):
            record = layers[node.metadata["layer"]]
            mantissas = np.asarray(node.weight) / 2.0 ** record["scale_exponent"]
            assert np.array_equal(mantissas, np.rint(mantissas)), name
            assert np.abs(mantissas).max() <= 127, name
            assert -6 <= record["weight_exponent"] <= 7
        if isinstance(node, nir.Delay):
            steps = np.asarray(node.delay) / graph.metadata["dt"]
            assert np.allclose(steps, np.rint(steps)) and 0 < steps.max() <= 62
        if isinstance(node, nir.LIF | nir.LI):
            fmt = node.metadata["loihi2"]
            beta = (4096 - fmt["decay"]) / 4096
            assert node.tau == pytest.approx(graph.metadata["dt"] / (1 - beta))
            # r carries the input gain: r * dt / tau = 1, the weights stay the chip's
            assert np.allclose(np.asarray(node.r) * graph.metadata["dt"] / node.tau, 1.0)
            if isinstance(node, nir.LIF):
                vth = fmt["threshold_mantissa"] << fmt["threshold_shift"]
                assert np.allclose(node.v_threshold, vth * 2.0 ** -fmt["fraction_bits"])
    spikes, membrane, total, reference = compare(net, graph, binary_input())
    assert spikes == membrane == 0 and total > 0
    assert any(train.any() for train in reference.spikes.values())


def test_graded_inputs_are_the_same_in_torch_and_the_reference():
    """Inputs split between two steps (Yin-Yang's rounding "linear"), sent as payloads."""
    net = profile_net()
    generator = torch.Generator().manual_seed(2)
    x = binary_input() * torch.rand(40, 8, 5, generator=generator)
    graph = to_nir(net, target="loihi2")
    assert graph.nodes["input"].metadata["loihi2"]["payload_fraction_bits"] == 5
    spikes, membrane, total, reference = compare(net, graph, x)
    assert spikes == membrane == 0 and total > 0
    assert any(train.any() for train in reference.spikes.values())


def test_saturation_is_the_same_in_torch_and_the_reference():
    net = profile_net(gain=30.0)
    spikes, membrane, _, reference = compare(net, to_nir(net, target="loihi2"), binary_input())
    assert reference.saturations > 0
    assert spikes == membrane == 0


def test_delays_above_62_are_refused_or_clipped_and_counted():
    torch.manual_seed(0)
    net = SpatialSNN(5, 3, [6], delays="free", max_delay=80, init_gain=6.0, beta=0.9)
    with torch.no_grad():
        net.layers[0].free_delays.uniform_(0, 60)
        net.layers[0].free_delays[:2, :3] = 70.0  # 6 synapses over the limit
        net.layers[1].free_delays.uniform_(0, 62)
    net.eval()
    with pytest.raises(ValueError, match="6 synapses have delays above max_delay=62"):
        to_nir(net, target="loihi2")
    graph = to_nir(net, target="loihi2", clip_delays=True)
    assert int(graph.metadata["clipped_synapses"]) == 6
    delays = [np.max(n.delay) for n in graph.nodes.values() if isinstance(n, nir.Delay)]
    assert round(max(delays) / graph.metadata["dt"]) == 62
    report = graph_report(graph)
    assert report["clipped_synapses"] == 6 and "6 synapses had delays" in format_report(report)
    with pytest.raises(ValueError, match="6 synapses have delays above max_delay=62"):
        deployment_network(net, target="loihi2")  # never clipped without being asked
    deployed, _ = deployment_network(net, target="loihi2", clip_delays=True)
    spikes, membrane, _, _ = compare(deployed, graph, binary_input(steps=90))
    assert spikes == membrane == 0
    # a lower limit: the graph and the deployed network clip to it alike
    graph = to_nir(net, target="loihi2", max_delay=30, clip_delays=True)
    assert int(graph.metadata["clipped_synapses"]) > 6
    deployed, _ = deployment_network(net, target="loihi2", max_delay=30, clip_delays=True)
    spikes, membrane, _, _ = compare(deployed, graph, binary_input(steps=90))
    assert spikes == membrane == 0
    with pytest.raises(ValueError, match="exceeds the loihi2 profile's 62"):
        to_nir(net, target="loihi2", max_delay=63)
    with pytest.raises(ValueError, match="8-bit weights"):
        to_nir(profile_net(), target="loihi2", weight_bits=4)


def test_report_counts_and_the_core_rule():
    torch.manual_seed(0)
    net = SpatialSNN(300, 3, [1100], max_delay=5, beta=0.9, delays="free")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        net.layers[0].mask.copy_(torch.rand(1100, 300, generator=generator) < 0.25)
    net.hardware_profile = "loihi2"
    report = graph_report(to_nir(net, target="loihi2"))
    first = report["layers"][0]
    mask = net.layers[0].mask
    assert first["synapses"] == 1100 * 300 and first["active"] == int(mask.sum())
    assert first["max_fan_in"] == int(mask.sum(dim=1).max())
    assert sum(first["delay_histogram"].values()) == first["nonzero"] <= first["active"]
    assert set(first["delay_histogram"]) <= set(range(6))
    hidden = report["populations"][0]
    # 1100 neurons need 2 cores of 1024; ~82 500 synapses * 2 B need 2 cores of 128 KiB
    assert hidden["cores"] == 2 and report["totals"]["cores"] == 3
    # fan-in x 127 (x payload 32 from the graded inputs) can overflow the 16-bit
    # synaptic input of a step: named, per layer
    fan_in = first["max_fan_in"]
    assert report["problems"] == [
        f"layers_0: fan-in {fan_in} x 127 x payload 32 can exceed the 16-bit synaptic input "
        "of a step",
        "layers_1: fan-in 1100 x 127 can exceed the 16-bit synaptic input of a step",
    ]
    wide = SpatialSNN(300, 3, [4], max_delay=5, beta=0.9, delays="free")
    with torch.no_grad():
        wide.layers[0].weight.fill_(127 / 128)  # mantissas 127 (scale 2**-7); 300 x 127 > 2**15
    wide.hardware_profile = "loihi2"
    graph = to_nir(wide, target="loihi2")
    report = graph_report(graph)
    assert any("fan-in 300 x 127" in problem for problem in report["problems"])
    assert "DOES NOT FIT" in format_report(report)
    everything = np.ones((8, 1, 300), np.int64)
    assert run_program(load_program(graph), everything).activation_overflows > 0


def test_chip_limits_are_named_when_crossed():
    fits = {"cores": CHIP_CORES, "neurons": CHIP_NEURONS, "synapses": CHIP_SYNAPSES}
    assert chip_problems(fits) == []
    for what in fits:
        problems = chip_problems(fits | {what: fits[what] + 1})
        assert len(problems) == 1 and problems[0].startswith(f"{what}: {fits[what] + 1} above")


def test_reference_refuses_what_the_chip_cannot_take():
    graph = to_nir(profile_net(), target="loihi2")
    program = load_program(graph)
    with pytest.raises(ValueError, match=r"amplitudes in \[0, 1\]"):
        run_program(program, np.full((4, 2, 5), 2.0))
    float_graph = to_nir(profile_net())
    with pytest.raises(ValueError, match="--target loihi2"):
        load_program(float_graph)
    name = next(n for n, node in graph.nodes.items() if isinstance(node, nir.Linear))
    graph.nodes[name].weight = graph.nodes[name].weight * 1.5  # no longer 8-bit mantissas
    with pytest.raises(ValueError, match="not 8-bit mantissas"):
        load_program(graph)


def test_torch_profile_equals_the_reference_on_the_yinyang_test_split():
    """A network trained a few steps in the profile (HardwareQAT from the start), on the
    loihi2 recipe's encoding (inputs split between two steps: graded payloads); the whole
    published test split, step for step."""
    torch.manual_seed(0)
    datamodule = YinYangDataModule(
        train_size=256, val_size=16, batch_size=64, num_steps=60, t_max=40, rounding="linear"
    )
    net = SpatialSNN(5, 3, [128], max_delay=20, beta=0.95, init_gain=5.0)
    model = SpikingClassifier(net, readout="mean")
    quiet_trainer([HardwareQAT("loihi2", after=0.0)], max_steps=8).fit(model, datamodule)
    assert model.net.hardware_profile == "loihi2"
    datamodule.setup("test")
    graph = to_nir(model.net, target="loihi2")
    deployed, _ = deployment_network(model.net, target="loihi2")
    result = evaluate_profile(
        model, deployed, load_program(graph), datamodule.test_dataloader(), progress=False
    )
    assert result["samples"] == 1000
    mismatches = result["mismatches"]
    assert mismatches["spike_elements"] == 1000 * 60 * 128
    assert mismatches["spikes"] == 0 and mismatches["membrane"] == 0
    accuracy = result["accuracy"]
    assert accuracy["trained"] == accuracy["profile"] == accuracy["reference"] > 1 / 3
    assert result["activation_overflows"] == 0


def test_cli_target_writes_report_into_the_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["spsnn"])
    options = [
        "--data.init_args.rounding", "linear",
        "--trainer.callbacks+", "lightning_modules.callbacks.HardwareQAT",
        "--trainer.callbacks.after", "0.5", "--trainer.max_epochs", "2",
    ]  # fmt: skip
    make_cli(tiny_yinyang_fit(tmp_path / "runs", *options))
    (checkpoint,) = (tmp_path / "runs" / "tiny").glob("version_*/checkpoints/last.ckpt")
    out = tmp_path / "tiny.nir"
    main(["export", str(checkpoint), str(out), "--target", "loihi2", "--evaluate"])
    printed = capsys.readouterr().out
    assert "Loihi 2 profile: layers" in printed and "fits one Loihi 2 chip" in printed
    assert "0 / 2304 spike mismatches" in printed  # 24 samples x 12 steps x 8 neurons
    run = checkpoint.parent.parent
    report = json.loads((run / "loihi2_report.json").read_text())
    assert (run / "loihi2_report.txt").read_text().startswith("Loihi 2 profile")
    assert [row["name"] for row in report["layers"]] == ["layers_0", "layers_1"]
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["target"] == "loihi2" and result["mismatches"]["membrane"] == 0
    with pytest.raises(SystemExit):
        main(["export", str(checkpoint), str(out), "--target", "loihi2", "--weight-bits", "4"])
    assert "8-bit weights" in capsys.readouterr().err
