"""Fixtures shared by the spatial_layers tests (function-scoped, no global state)."""

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


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture
def rng() -> torch.Generator:
    """A seeded generator, so that each test's random numbers do not depend on test order."""
    return torch.Generator().manual_seed(1234)
