"""Issue 23's launch budget: a training step with adaptive neurons (learnable constants)
dispatches at most 1.3x the ops of the same step with the LIF, on the Triton backend.

The neurons' part of the count does not depend on T or B (each neuron layer is one fused
op per direction), so the SHD-shape network (140-256-256-20, 25 taps, batch norm,
dropout) runs here with T = 12, B = 2, to keep Triton's interpreter quick (the delay
layers' algorithm, ``method="auto"``, follows the shape: lif and adlif are compared at
the same one); ``benchmarks/op_count.py`` measures the full shape (B = 8, T = 100).
"""

import os
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

from op_count import BUDGET, SHD_SHAPE, count_step  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"),
    reason="the Triton backend needs a GPU or Triton's interpreter",
)
SHAPE = {**SHD_SHAPE, "steps": 12, "batch": 2}


@pytest.mark.slow
def test_adlif_step_dispatches_at_most_1_3x_the_lif_step():
    lif = count_step("lif", shape=SHAPE, backend="triton")
    adlif = count_step("adlif", shape=SHAPE, backend="triton")
    assert adlif.counts["spsnn.neuron_forward"] == 2
    assert adlif.counts["spsnn.neuron_backward"] == 2
    assert adlif.total <= BUDGET * lif.total, (adlif.total, lif.total)
