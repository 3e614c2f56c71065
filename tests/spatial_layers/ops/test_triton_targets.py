"""Every Triton kernel compiles for sm_80 and sm_90 (fp32, fp16, bf16) with no contraction.

The compile runs in a subprocess without ``TRITON_INTERPRET``
(:mod:`tests.helpers.triton_targets`): real cubins from the ptxas bundled with Triton,
no GPU needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def report() -> dict:
    environment = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.helpers.triton_targets"], capture_output=True, text=True,
        env=environment, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_kernel_compiles_for_sm80_and_sm90_without_contraction(report):
    assert report["kernels"], "no *_kernel found in spatial_layers.ops"
    assert report["problems"] == []
    assert report["never_launched"] == []  # every kernel is reached by a public op


def test_each_kernel_is_built_for_both_targets_and_the_three_float_types(report):
    for kernel in report["kernels"]:
        name = kernel.rsplit(".", 1)[1]
        builds = [build for build in report["builds"] if build["kernel"] == name]
        assert {build["sm"] for build in builds} == {80, 90}, name
        pointers = {t for build in builds for t in build["signature"].values() if t[0] == "*"}
        assert {"*fp32", "*fp16", "*bf16"} <= pointers, name
