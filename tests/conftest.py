"""Settings for the whole test run.

Without a GPU, Triton kernels run in Triton's CPU interpreter: ``TRITON_INTERPRET=1``
must be set before ``spatial_layers.ops.triton_lif`` is first imported (Triton reads it when
it decorates a kernel). With a GPU the real kernels run and the interpreter stays off.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
