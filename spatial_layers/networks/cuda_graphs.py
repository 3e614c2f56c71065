"""CUDA-graph-captured training forward and backward of a :class:`SpatialSNN`.

An eager training step of a spiking network launches thousands of tiny kernels (the
delay kernels, batch norm, dropout, the neurons of every layer); on a GPU the launch
overhead, not the arithmetic, bounds it. :class:`GraphedNetwork` captures the
network's training forward and backward once with ``torch.cuda.make_graphed_callables``
and replays them: two launches per step. The loss, the optimizer and every callback
stay eager.

What a replay sees: parameters and buffers at their captured addresses, so in-place
changes reach it (optimizer steps, ``layer.sigma = ...`` of sigma annealing, rewired
masks, Dale's clamps, batch-norm statistics), and the cached constants of the delay
layers (DFT matrices, tap indices: :mod:`spatial_layers.constants`), which the warm-up
passes make and the graph keeps alive; they depend on the input's shape, dtype and
device only, which the signature holds. What needs a new capture: a change of the
computation itself (a layer's ``kernel_kind`` or ``weight_bits``, Dale signs switched on,
a buffer or parameter replaced by another tensor, the input's shape or dtype). Each step
compares a signature of those and captures again when it differs, so a setting changed
by a callback (``RoundDelays`` late in training) is never ignored by a stale graph.

A batch of another shape than the captured one (the last, smaller batch of an epoch)
runs eagerly, with the same numbers; a warning says so once and names ``drop_last``.
Evaluation (``net.eval()``) always runs eagerly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

from spatial_layers import constants
from spatial_layers.delay import delay_layers
from spatial_layers.networks.snn import SNNOutput, SpatialSNN


class _Run(nn.Module):
    """``net.run(x, record_hidden=False)`` as a module whose forward returns tensors only
    (what ``make_graphed_callables`` captures): membrane, hidden rates, output spikes."""

    def __init__(self, net: SpatialSNN) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        output = self.net.run(x, record_hidden=False)
        spikes = () if output.spikes is None else (output.spikes,)
        return (output.membrane, *output.hidden_rates, *spikes)

    def unflatten(self, flat: tuple[Tensor, ...]) -> SNNOutput:
        """The :class:`SNNOutput` that :meth:`forward`'s tuple came from."""
        hidden = len(self.net.hidden_sizes)
        spikes = flat[1 + hidden] if self.net.spiking_output else None
        return SNNOutput(flat[0], spikes, [], list(flat[1 : 1 + hidden]))


_PLAIN = (bool, int, float, str, type(None))


def _settings(module: nn.Module) -> tuple:
    """A module's own plain-valued attributes (numbers, strings, flags and tuples of
    them, private ones included): what a forward reads as Python constants."""
    return tuple(
        sorted(
            (name, value)
            for name, value in vars(module).items()
            if isinstance(value, _PLAIN)
            or (isinstance(value, tuple) and all(isinstance(v, _PLAIN) for v in value))
        )
    )


def graph_signature(net: nn.Module, x: Tensor) -> tuple:
    """Everything that a captured graph bakes in and a training run may change.

    Two calls give equal signatures exactly when a graph captured at the first can be
    replayed at the second: same input shape and dtype; the same Python constants in
    every module (kernel kind, weight bits, dropout probability, LIF constants,
    velocity, ...: any plain attribute, so a setting a callback changes is never
    replayed stale); Dale signs on or off; and the same tensors (by address) for every
    parameter and buffer. Tensor values are not part of it: tensors changed in place
    are read afresh by a replay.
    """
    settings = tuple(
        (name, _settings(module), getattr(module, "sign", 0) is None)
        for name, module in net.named_modules()
    )
    tensors = tuple(
        (name, t.data_ptr(), t.dtype, tuple(t.shape), t.requires_grad)
        for name, t in [*net.named_parameters(), *net.named_buffers()]
    )
    return (tuple(x.shape), x.dtype, x.device, settings, tensors)


class GraphedNetwork:
    """Runs a network's training forward (and its backward) as captured CUDA graphs.

    Args:
        net: the network; its ``run(x)`` is captured.
        warmup: eager warm-up iterations before each capture (``make_graphed_callables``).
        make_graphed: the capture function; ``torch.cuda.make_graphed_callables`` (a
            stand-in lets the re-capture logic be tested without a GPU).

    Shape:
        - Input: (T, B, C_in) spikes, time-major, on a CUDA device.
        - Output: the :class:`SNNOutput` of ``net.run(x, record_hidden=False)``
          (hidden rates, no hidden spike trains).

    Attributes:
        captures: how many times a graph was captured (1 in a run whose computation
            never changes, plus one per change of kernel, weight bits or signs).
        eager_batches: training batches that ran eagerly because of their shape.
    """

    def __init__(
        self,
        net: SpatialSNN,
        *,
        warmup: int = 3,
        make_graphed: Callable[..., nn.Module] | None = None,
    ) -> None:
        if warmup < 1:
            raise ValueError(f"warmup must be >= 1 (make_graphed_callables needs it), got {warmup}")
        self.net = net
        self.warmup = warmup
        self.make_graphed = (
            torch.cuda.make_graphed_callables if make_graphed is None else make_graphed
        )
        self.captures = 0
        self.eager_batches = 0
        self._graphed: _Run | None = None
        self._signature: tuple | None = None
        self._static_shape: tuple[int, ...] | None = None
        self._constants: tuple[object, ...] = ()

    def __call__(self, x: Tensor) -> SNNOutput:
        if not self.net.training:
            return self.net.run(x, record_hidden=False)
        if self._static_shape is None:
            self._static_shape = tuple(x.shape)
        if tuple(x.shape) != self._static_shape:
            self._warn_eager(x)
            return self.net.run(x, record_hidden=False)
        signature = graph_signature(self.net, x)
        if signature != self._signature:
            self._capture(x)
            self._signature = graph_signature(self.net, x)
        return self._graphed.unflatten(self._graphed(x))

    def _warn_eager(self, x: Tensor) -> None:
        if self.eager_batches == 0:
            warnings.warn(
                f"cuda_graphs: a training batch of shape {tuple(x.shape)} (time-major) differs "
                f"from the captured {self._static_shape}; such batches run eagerly (same "
                "numbers, slower). Set the data module's drop_last (or a batch size that "
                "divides the training set) to keep every step in the graph.",
                stacklevel=3,
            )
        self.eager_batches += 1

    def _capture(self, x: Tensor) -> None:
        _refuse_profile(self.net)  # set after fit start, e.g. by hand
        if torch.is_autocast_enabled(x.device.type):
            raise ValueError(
                "cuda_graphs does not support mixed precision (autocast) yet: train with "
                "trainer.precision 32 or set cuda_graphs false"
            )
        # The warm-up and capture passes run the training forward: give back the
        # batch-norm statistics (and any other buffer) they moved.
        saved = [(buffer, buffer.detach().clone()) for buffer in self.net.buffers()]
        sample = x.detach().clone().requires_grad_(x.requires_grad)
        self._graphed = self.make_graphed(_Run(self.net), (sample,), num_warmup_iters=self.warmup)
        # The graph reads cached constants (DFT matrices, tap indices) at fixed addresses:
        # kept alive with it, whatever the cache drops later.
        self._constants = constants.held()
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
        self.captures += 1


def check_cuda_graphs(device: torch.device, net: nn.Module) -> None:
    """Raises where graph capture cannot work: not on CUDA, a network in a hardware profile
    (its formats follow the weights, read on the host), or a layer that syncs the host."""
    _refuse_profile(net)
    if device.type != "cuda":
        raise ValueError(
            f"cuda_graphs needs a CUDA device, but the model is on {device}: train on a GPU "
            "(trainer.accelerator gpu) or set cuda_graphs false"
        )
    for layer in delay_layers(net):
        if layer.check_finite:
            raise ValueError(
                "cuda_graphs cannot capture a layer with check_finite=True (it syncs with the "
                "host every step): turn check_finite off or set cuda_graphs false"
            )


def _refuse_profile(net: nn.Module) -> None:
    profile = getattr(net, "hardware_profile", None)
    if profile is not None:
        raise ValueError(
            f"cuda_graphs cannot capture a network in the {profile!r} hardware profile (its "
            "number formats follow the weights and are read on the host every step): set "
            "cuda_graphs false"
        )
