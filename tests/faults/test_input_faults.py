"""Non-finite input never gives a prediction: at the network, at a batch, on CUDA later."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spatial_layers import SpatialDelay, SpatialSNN
from spatial_layers.finite import FLAG, NonFiniteInputError, raise_if_nonfinite


@pytest.mark.parametrize(
    ("value", "counts"), [(float("nan"), "1 NaN and 0 Inf"), (float("inf"), "0 NaN and 1 Inf")]
)
def test_one_bad_value_in_a_networks_input_is_an_error_not_a_prediction(value, counts):
    torch.manual_seed(0)
    net = SpatialSNN(5, 3, [8], max_delay=4)
    x = torch.zeros(30, 4, 5)
    x[7, 0, 2] = value
    with pytest.raises(
        NonFiniteInputError,
        match=rf"SpatialSNN: {counts} values of the \(30, 4, 5\) input, the first at \[7, 0, 2\]",
    ):
        net(x)
    with pytest.raises(NonFiniteInputError):
        net.eval().run(x)


def test_cuda_input_is_flagged_on_the_device_and_raised_by_one_check(monkeypatch):
    """The deferred path (CUDA: no host sync per step), driven on CPU tensors: the flag is
    set on the device, and raise_if_nonfinite names the module and clears the flags."""
    net = SpatialSNN(5, 3, [8], max_delay=4)
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    x = torch.zeros(6, 2, 5)
    x[1, 1, 1] = float("nan")
    net(x)  # no error yet: recorded
    monkeypatch.undo()
    assert bool(getattr(net, FLAG)) and bool(getattr(net.layers[0], FLAG))
    with pytest.raises(
        NonFiniteInputError, match=r"NaN or Inf reached the input of .*hidden\.0\.synapses"
    ):
        raise_if_nonfinite(net)
    assert not any(bool(getattr(m, FLAG)) for m in net.modules() if hasattr(m, FLAG))
    raise_if_nonfinite(net)  # cleared: nothing more to report


def test_a_layer_used_alone_refuses_non_finite_steps_too():
    layer = SpatialDelay(3, 2, max_delay=2)
    with pytest.raises(NonFiniteInputError, match=r"SpatialDelay\(3 -> 2\)"):
        layer.step(torch.tensor([[0.0, float("inf"), 0.0]]))


def test_a_training_batch_with_nan_is_one_line_naming_the_split(spsnn, config_file, monkeypatch):
    from lightning_modules.data import YinYangDataModule

    encode = YinYangDataModule.encode

    def poisoned(self, samples: np.ndarray) -> torch.Tensor:
        spikes = encode(self, samples)
        spikes[3, 2, 1] = float("nan")
        return spikes

    monkeypatch.setattr(YinYangDataModule, "encode", poisoned)
    outcome = spsnn("fit", "--config", config_file())
    assert outcome.code == 2
    assert "spsnn: error: a sanity_check batch of (B, T, C) spikes holds 1 NaN" in outcome.line
