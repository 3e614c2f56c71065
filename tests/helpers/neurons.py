"""Helpers of the neuron-family tests: devices, inputs, the configurations of each family,
and step-by-step references (the pure step functions in a Python loop)."""

from __future__ import annotations

import os

import torch

from spatial_layers.neurons import AdaptiveLeaky, Leaky, Synaptic

#: (reset, reset_delay) combinations the lif and cuba families run.
RESETS = [(reset, delay) for delay in (True, False) for reset in ("subtract", "zero", "none")]


def device_for(backend: str) -> torch.device:
    """Triton's kernels run on CUDA, or on CPU tensors under its interpreter."""
    if backend == "triton" and os.environ.get("TRITON_INTERPRET") != "1":
        return torch.device("cuda")
    return torch.device("cpu")


def drive(shape, *, seed: int = 0, scale: float = 0.8, offset: float = 0.3, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=generator) * scale + offset).to(dtype)


def make_neuron(family: str, size: int, *, learn: bool, reset="subtract", reset_delay=True,
                backend="torch", seed: int = 3):  # fmt: skip
    """A neuron module of ``family`` with per-neuron constants (ranges), all learnable
    with ``learn``; the same constants for the same seed."""
    torch.manual_seed(seed)
    if family == "lif":
        return Leaky([0.8, 0.95], size=size, learn_beta=learn, reset=reset,
                     reset_delay=reset_delay, backend=backend)  # fmt: skip
    if family == "cuba":
        return Synaptic([0.4, 0.9], [0.8, 0.95], size=size, learn_alpha=learn,
                        learn_beta=learn, reset=reset, reset_delay=reset_delay,
                        backend=backend)  # fmt: skip
    return AdaptiveLeaky(size, learn_beta=learn, learn_adaptation=learn, scale=3.0,
                         backend=backend)  # fmt: skip


def stepped(neuron, currents, state=None):
    """(spikes, membrane traces, final state) of ``neuron.cell_forward_with_membrane`` (the
    pure step function) in a Python loop."""
    spikes, traces = [], []
    for current in currents:
        spike, membrane, state = neuron.cell_forward_with_membrane(current, state)
        spikes.append(spike)
        traces.append(membrane)
    return torch.stack(spikes), torch.stack(traces), state


class Sequence(torch.nn.Module):
    """``neuron.sequence`` as a module's forward, so that ``torch.func.functional_call``
    can swap the neuron's learnable constants (gradcheck through them)."""

    def __init__(self, neuron) -> None:
        super().__init__()
        self.neuron = neuron

    def forward(self, currents, state):
        return self.neuron.sequence(currents, state)


def sequence_with_raw(neuron, currents, state, raw):
    """``neuron.sequence(currents, state)`` with ``raw`` as the neuron's learnable constants."""
    return torch.func.functional_call(Sequence(neuron), {"neuron.raw": raw}, (currents, state))
