"""Fixtures shared by the spatial_layers tests (function-scoped, no global state)."""

import importlib.util
import os

import pytest
import torch

#: CPU always; CUDA where a GPU is present (the tests skip it otherwise).
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    ),
]


#: The multi-step LIF backends: torch always; Triton where it is installed and can
#: run here (CUDA, or its CPU interpreter, which tests/conftest.py turns on without a GPU).
TRITON_RUNS = importlib.util.find_spec("triton") is not None and (
    torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"
)
BACKENDS = [
    "torch",
    pytest.param(
        "triton",
        marks=pytest.mark.skipif(not TRITON_RUNS, reason="needs triton (CUDA or interpreter)"),
    ),
]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """A multi-step LIF backend (``leaky_sequence(..., backend=...)``)."""
    return request.param


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture
def rng() -> torch.Generator:
    """A seeded generator, so that each test's random numbers do not depend on test order."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True)
def one_intra_op_thread():
    """These tests run many tiny ops; with ``pytest -n 2`` on two cores, two OpenMP
    threads per worker spin against each other (about 10x slower here). One
    thread per test, restored afterwards so no other test is affected."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
