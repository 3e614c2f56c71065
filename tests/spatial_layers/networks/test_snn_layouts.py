"""SpatialSNN(batch_first=True) takes tonic's batches as they come, and gives the numbers
of the time-major call; the classifier passes either layout through."""

from __future__ import annotations

import pytest
import torch
from tonic.collation import PadTensors

from spatial_layers import SpatialSNN


def samples(rng: torch.Generator) -> list[tuple[torch.Tensor, int]]:
    """Four (T_i, C) spike trains of different lengths, as a tonic dataset yields them."""
    lengths = (89, 60, 75, 40)
    return [((torch.rand(t, 140, generator=rng) < 0.05).float(), i) for i, t in enumerate(lengths)]


def test_a_padtensors_batch_runs_as_batch_first_equal_to_the_time_major_call(rng):
    spikes, _ = PadTensors(batch_first=True)(samples(rng))
    assert spikes.shape == (4, 89, 140)  # (B, T, C)
    torch.manual_seed(0)
    batch_first = SpatialSNN(140, 20, [32], max_delay=10, batch_first=True)
    time_major = SpatialSNN(140, 20, [32], max_delay=10)
    time_major.load_state_dict(batch_first.state_dict())  # layout is not a weight
    out = batch_first(spikes)
    assert out.shape == (4, 89, 20)
    torch.testing.assert_close(out, time_major(spikes.transpose(0, 1)).transpose(0, 1))
    full = batch_first.run(spikes)
    assert full.hidden_spikes[0].shape == (4, 89, 32) and full.membrane.shape == (4, 89, 20)


def test_the_wrong_layout_is_refused_naming_the_expected_one():
    net = SpatialSNN(140, 20, [8], batch_first=True)
    with pytest.raises(ValueError, match=r"expected \(B, T, 140\) input spikes, got shape"):
        net(torch.zeros(4, 89, 70))


def test_the_classifier_gives_the_same_logits_for_either_layout(rng):
    from lightning_modules.classifier import SpikingClassifier

    spikes, _ = PadTensors(batch_first=True)(samples(rng))
    torch.manual_seed(0)
    first = SpikingClassifier(SpatialSNN(140, 20, [16], max_delay=6, batch_first=True))
    major = SpikingClassifier(SpatialSNN(140, 20, [16], max_delay=6))
    major.net.load_state_dict(first.net.state_dict())
    torch.testing.assert_close(first(spikes), major(spikes))  # (B, T, C) batches for both
