"""evaluate_export counts mismatches; checkpoints and data modules load without running code;
evaluate_profile: the torch profile equals the Loihi 2 reference on the Yin-Yang test split."""

from __future__ import annotations

import pytest
import torch
import yaml

from lightning_modules.callbacks import HardwareQAT
from lightning_modules.classifier import SpikingClassifier
from lightning_modules.data import YinYangDataModule
from lightning_modules.evaluation import (
    datamodule_from_checkpoint,
    evaluate_export,
    evaluate_profile,
    load_classifier,
)
from spatial_layers.networks import SpatialSNN
from spatial_layers.networks.deploy import deployment_network
from spatial_layers.nir import from_nir, to_nir
from spatial_layers.nir.loihi2 import load_program
from tests.helpers.export import make_net, spike_input
from tests.helpers.training import quiet_steps_trainer


def classifier_around(case: str) -> SpikingClassifier:
    return SpikingClassifier(make_net(case)).eval()


def batches(count: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [
        (spike_input(seed=seed).transpose(0, 1), torch.tensor([0, 1, 2, 1]))
        for seed in range(count)
    ]


def test_evaluation_counts_no_mismatch_for_the_import_and_some_for_another_network():
    model = classifier_around("masked_dale")
    deployed, _ = deployment_network(model.net, weight_bits=8)
    imported = from_nir(to_nir(model.net, weight_bits=8))
    result = evaluate_export(model, deployed, imported, batches(), progress=False)
    assert result["samples"] == 8
    assert all(0.0 <= value <= 1.0 for value in result["accuracy"].values())
    mismatches = result["mismatches"]
    assert mismatches["spikes"] == mismatches["membrane"] == 0
    assert mismatches["spike_elements"] == 2 * 25 * 4 * (7 + 6)
    assert mismatches["membrane_elements"] == 2 * 25 * 4 * 3
    other = from_nir(to_nir(model.net, weight_bits=3))
    result = evaluate_export(model, deployed, other, batches(), progress=False)
    assert (
        result["mismatches"]["membrane"] > 0 and result["mismatches"]["max_membrane_difference"] > 0
    )


def test_load_classifier_refuses_other_files(tmp_path):
    path = tmp_path / "x.ckpt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="not a SpikingClassifier checkpoint"):
        load_classifier(path)
    net = {"class_path": "subprocess.Popen", "init_args": {"args": ["true"]}}
    torch.save({"state_dict": {}, "hyper_parameters": {"net": net}}, path)
    with pytest.raises(ValueError, match=r"not a class of spatial_layers\.networks"):
        load_classifier(path)


def test_data_module_from_checkpoint_or_config(tmp_path):
    saved = {"_class_path": "lightning_modules.data.YinYangDataModule", "test_size": 8}
    module = datamodule_from_checkpoint({"datamodule_hyper_parameters": saved})
    assert isinstance(module, YinYangDataModule) and module.hparams.test_size == 8
    for class_path in ("subprocess.Popen", "os.system"):  # never imported, never called
        with pytest.raises(ValueError, match=r"outside lightning_modules\.data"):
            datamodule_from_checkpoint({"datamodule_hyper_parameters": {"_class_path": class_path}})
    with pytest.raises(ValueError, match="pass --config"):
        datamodule_from_checkpoint({})
    config = tmp_path / "config.yaml"
    data = {"class_path": "lightning_modules.data.YinYangDataModule", "init_args": {"val_size": 4}}
    config.write_text(yaml.safe_dump({"data": data}))
    assert datamodule_from_checkpoint({}, config).hparams.val_size == 4
    config.write_text(yaml.safe_dump({"data": {"class_path": "collections.OrderedDict"}}))
    with pytest.raises(ValueError, match="not a LightningDataModule"):
        datamodule_from_checkpoint({}, config)


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
    quiet_steps_trainer([HardwareQAT("loihi2", after=0.0)], max_steps=8).fit(model, datamodule)
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
