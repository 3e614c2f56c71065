"""Settings for the whole test run.

Without a GPU, Triton kernels run in Triton's CPU interpreter: ``TRITON_INTERPRET=1``
must be set before ``spatial_layers.ops.triton_lif`` is first imported (Triton reads it when
it decorates a kernel). With a GPU the real kernels run and the interpreter stays off.
Lightning's log handlers are pointed at an open stream before every test.
"""

import os

import pytest
import torch

from tests.helpers.logs import log_to_current_stderr

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _lightning_logs_to_an_open_stream():
    """Every test starts with Lightning's log handlers on the current stderr, never on the
    closed stream of the test that first imported Lightning (:mod:`tests.helpers.logs`)."""
    log_to_current_stderr()
