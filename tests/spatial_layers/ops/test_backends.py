"""Which backend runs the multi-step LIF: torch for CPU tensors, and Triton only where it can."""

import pytest
import torch

from spatial_layers.neurons import leaky_sequence, resolve_backend


def test_auto_picks_torch_for_cpu_tensors():
    assert resolve_backend("auto", torch.zeros(2)) == "torch"
    assert resolve_backend("torch", torch.zeros(2)) == "torch"


def test_triton_on_cpu_without_the_interpreter_raises(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(
        ValueError, match=r"backend='triton' runs on CUDA tensors.*TRITON_INTERPRET=1"
    ):
        leaky_sequence(torch.zeros(3, 2, 2), backend="triton")


def test_triton_missing_raises(monkeypatch):
    monkeypatch.setattr("spatial_layers.ops.backends.TRITON_FOUND", False)
    with pytest.raises(ValueError, match="needs the triton package"):
        leaky_sequence(torch.zeros(3, 2, 2), backend="triton")
    assert resolve_backend("auto", torch.zeros(2)) == "torch"
