"""Issue 23's launch budget: a training step with adaptive neurons (learnable constants)
dispatches at most 1.3x the ops of the same step with the LIF, on the Triton backend.

The neurons' part of the count does not depend on T or B (each neuron layer is one fused
op per direction), so the SHD-shape network (140-256-256-20, 25 taps, batch norm,
dropout) runs here with T = 12, B = 2, to keep Triton's interpreter quick (the delay
layers' algorithm, ``method="auto"``, follows the shape: lif and adlif are compared at
the same one); ``benchmarks/op_count.py`` measures the full shape (B = 8, T = 100).
"""

import os

import pytest
import torch

from tests.helpers.benchmarks import load

op_count = load("op_count")

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"),
    reason="the Triton backend needs a GPU or Triton's interpreter",
)
SHAPE = {**op_count.SHD_SHAPE, "steps": 12, "batch": 2}


@pytest.mark.slow
def test_adlif_step_dispatches_at_most_1_3x_the_lif_step():
    lif = op_count.count_family_step("lif", shape=SHAPE, backend="triton")
    adlif = op_count.count_family_step("adlif", shape=SHAPE, backend="triton")
    assert adlif["neuron_forward.default"] == 2
    assert adlif["neuron_backward.default"] == 2
    assert adlif.total() <= op_count.FAMILY_RATIO * lif.total(), (adlif.total(), lif.total())
