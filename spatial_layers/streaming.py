"""The streaming form of a delayed layer: one time step per call, the delay line kept.

A sequence layer sees the whole (T, B, C_in) input at once; a streaming one sees
(B, C_in) per call and keeps the last ``max_delay`` inputs itself, in a ring buffer
(:class:`~spatial_layers.functional.DelayState`), giving exactly the numbers of the
sequence call. Three forms, one implementation (:class:`StreamingDelay`, a mixin of
:class:`~spatial_layers.SpatialDelay`):

- snnTorch style: ``layer.step(x_t)`` (or a layer built with ``init_hidden=True``,
  whose every call is a step), the state inside; :meth:`StreamingDelay.reset_state`
  starts a new sequence, :meth:`StreamingDelay.detach_state` cuts the gradient
  (truncated BPTT);
- Norse style: :class:`SpatialDelayCell`, ``forward(x_t, state=None) -> (y_t, state)``
  with the state explicit, so ``norse.torch.SequentialState`` treats it as stateful;
- sequences in chunks: :meth:`StreamingDelay.forward_chunk`, ``(x, state) -> (y, state)``
  on (T, B, C_in) chunks, as Norse's ``LIF(x, state)`` carries its state: the chunks'
  outputs are the whole sequence's (to float rounding: each chunk may run another
  algorithm of :func:`~spatial_layers.functional.delayed_linear`). Its state is the cell's
  :class:`~spatial_layers.functional.DelayState`, so chunks and steps can alternate;
- a whole network: :func:`reset` and :func:`detach` reach every spsnn layer and
  snnTorch neuron of it. ``snntorch.utils.reset(net)`` reaches snnTorch's neurons only.

A delayed layer and its neurons carry their states side by side: for chunks of a
sequence, ``y, delay_state = layer.forward_chunk(x, delay_state)`` then
``spikes, membranes = leaky_sequence(y, params, membrane)`` with
``membrane = membranes[-1]`` for the next chunk (the LIF's reset at a chunk's first step
follows from that membrane, as within a sequence). Cut the gradient between chunks
(truncated BPTT) with ``DelayState(delay_state.history.detach())`` and
``membrane.detach()``.

snnTorch is never imported here: its neurons are handled when the network
holds some (which needs snnTorch imported already).
"""

from __future__ import annotations

import sys

import torch
from torch import Tensor, nn

from spatial_layers.functional import DelayState, delayed_step


class StreamingDelay:
    """Per-step calls of a delayed layer, the history kept inside (an nn.Module mixin).

    The host layer provides ``in_features``, ``max_delay``, ``bias``, ``init_hidden``,
    ``batch_first``, ``applied_kernel()``, ``_forward_time_major(x)`` (the sequence call),
    ``_check(x, rank)`` (shape, device and dtype checks) and ``check_fits(tensor, rows, taps)``
    (a size check).
    """

    in_features: int
    max_delay: int
    init_hidden: bool
    batch_first: bool
    bias: Tensor | None
    _stream: DelayState | None
    _stream_backward: bool

    def _init_stream(self) -> None:
        self._stream = None
        # Set when a backward pass went through the stream, which freed its graph.
        self._stream_backward = False

    def step(self, x_t: Tensor) -> Tensor:
        """Streaming mode: one (B, C_in) step -> (B, C_out), history kept inside.

        Calling ``step`` over a sequence gives the same numbers as ``forward``
        on the whole sequence. Call :meth:`reset_state` between sequences and
        :meth:`detach_state` between the chunks of truncated BPTT: a step after
        a backward pass through a history that still holds its (freed) graph
        raises a RuntimeError that says so.
        """
        self._check_stream_graph()
        y_t, self._stream = self.cell_forward(x_t, self._stream)
        if y_t.requires_grad:
            y_t.register_hook(self._note_backward)
        return y_t

    def _check_stream_graph(self) -> None:
        """Refuses to build on a history whose graph a backward pass has freed."""
        stream = self._stream
        if self._stream_backward and stream is not None and stream.history.requires_grad:
            raise RuntimeError(
                "a backward pass went through the history this SpatialDelay keeps between "
                "steps, and freed its graph: call layer.detach_state() to go on with the "
                "sequence (truncated BPTT) or layer.reset_state() to start a new one; "
                "spatial_layers.detach(net) / spatial_layers.reset(net) do it for every spsnn "
                "layer and snnTorch neuron of a network (snntorch.utils.reset does not "
                "reach spsnn layers)"
            )

    def _note_backward(self, grad: Tensor) -> None:
        self._stream_backward = True

    def cell_forward(
        self, x_t: Tensor, state: DelayState | None = None
    ) -> tuple[Tensor, DelayState]:
        """Streaming mode with explicit state (Norse cell convention)."""
        self._check(x_t, rank=2)
        kernel = self.applied_kernel()
        if state is None:  # the history the step starts: B x C_in x taps
            self.check_fits("step history", x_t.shape[0] * self.in_features, kernel.shape[-1])
        else:
            self._check_state(state, x_t.shape[0], kernel.shape[-1], x_t)
        return delayed_step(x_t, kernel, state, self.bias)

    def forward_chunk(
        self, x: Tensor, state: DelayState | None = None
    ) -> tuple[Tensor, DelayState]:
        """Sequence mode over one chunk of a longer sequence, the delay line carried over.

        Args:
            x: the chunk, (T, B, C_in) (or (B, T, C_in) with ``batch_first``).
            state: the delay line after the previous chunk (or the previous
                :meth:`cell_forward` step), None at the start of a sequence.

        Returns:
            The chunk's output, shaped as ``x`` with C_out channels, and the delay line
            after its last step, (B, C_in, max_delay + 1) (``history[..., k]`` = the
            input k steps before the chunk's last), for the next chunk or step.

        Calling it on consecutive chunks gives the outputs of :meth:`forward` on their
        concatenation (to float rounding), as Norse's ``LIF(x, state)`` does for its
        neurons. The state keeps the autograd graph of the inputs it holds; detach it
        between chunks for truncated BPTT.

        Example:
            >>> from spatial_layers import SpatialDelay
            >>> layer = SpatialDelay(3, 2, max_delay=4, kernel="linear")
            >>> x = torch.rand(10, 1, 3)
            >>> first, state = layer.forward_chunk(x[:6])
            >>> second, state = layer.forward_chunk(x[6:], state)
            >>> torch.allclose(torch.cat([first, second]), layer(x), atol=1e-6)
            True
        """
        if self.init_hidden:
            raise TypeError(
                "forward_chunk takes (T, B, C_in) chunks, but this layer was built with "
                "init_hidden=True (one step per call): build it with init_hidden=False"
            )
        if self.batch_first:
            if x.dim() != 3:
                self._check(x, rank=3)  # raises, naming the layout
            y, state = self._chunk_time_major(x.transpose(0, 1), state)
            return y.transpose(0, 1), state
        return self._chunk_time_major(x, state)

    def _chunk_time_major(self, x: Tensor, state: DelayState | None) -> tuple[Tensor, DelayState]:
        taps = self.max_delay + 1
        if state is None:
            y = self._forward_time_major(x)  # checks x
            self.check_fits("chunk history", x.shape[1] * self.in_features, taps)
            inputs = x
        else:
            self._check(x, rank=3)
            self._check_state(state, x.shape[1], taps, x)
            # The max_delay inputs before the chunk, oldest first, ahead of it.
            past = state.history[..., : taps - 1].flip(-1).permute(2, 0, 1)
            inputs = torch.cat([past, x])
            y = self._forward_time_major(inputs)[taps - 1 :]
        # The last max_delay + 1 inputs, newest first (zeros before a short first chunk).
        recent = inputs[-taps:].flip(0).permute(1, 2, 0)
        if recent.shape[-1] < taps:
            recent = torch.nn.functional.pad(recent, (0, taps - recent.shape[-1]))
        return y, DelayState(recent)

    def _check_state(self, state: DelayState, batch: int, taps: int, like: Tensor) -> None:
        expected = (batch, self.in_features, taps)
        history = state.history
        if tuple(history.shape) != expected:
            raise ValueError(
                f"state history must have shape (B, C_in, taps) = {expected}, got "
                f"{tuple(history.shape)}; call reset_state() between sequences"
            )
        if history.device != like.device or history.dtype != like.dtype:
            raise ValueError(
                f"state history is {history.dtype} on {history.device} but the input is "
                f"{like.dtype} on {like.device}; call reset_state() after moving the layer"
            )

    def reset_state(self) -> None:
        """Forgets the streaming history kept by :meth:`step`: the next step starts a sequence."""
        self._stream = None
        self._stream_backward = False

    def detach_state(self) -> None:
        """Truncated BPTT: keeps the history of :meth:`step`, cuts the gradient through it.

        The next steps see the same inputs in flight, but backpropagate no
        further than this call (as snnTorch's ``detach_hidden``).
        """
        if self._stream is not None:
            self._stream = DelayState(self._stream.history.detach())
        self._stream_backward = False


class SpatialDelayCell(nn.Module):
    """Norse-style cell view of a :class:`~spatial_layers.SpatialDelay` (shares its parameters).

    ``forward(x_t, state=None) -> (y_t, state)`` with the history in an
    explicit :class:`~spatial_layers.functional.DelayState`, so
    ``norse.torch.SequentialState`` treats it as stateful.

    Shape:
        - Input: (B, C_in) at one step.
        - Output: (B, C_out) and a state holding (B, C_in, max_delay + 1).
    """

    def __init__(self, layer: StreamingDelay) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x_t: Tensor, state: DelayState | None = None) -> tuple[Tensor, DelayState]:
        return self.layer.cell_forward(x_t, state)


def _streaming_layers(net: nn.Module) -> list[nn.Module]:
    """The spsnn modules of ``net`` that keep a state between steps: delayed layers and
    neurons (:class:`~spatial_layers.neurons.NeuronBase`), both with ``reset_state`` and
    ``detach_state``."""
    from spatial_layers.neurons.base import NeuronBase

    return [m for m in net.modules() if isinstance(m, StreamingDelay | NeuronBase)]


def _snntorch_neurons(net: nn.Module) -> list[nn.Module]:
    """The snnTorch spiking neurons in ``net``, in ``modules()`` order (none without snnTorch)."""
    snntorch = sys.modules.get("snntorch")
    if snntorch is None:
        return []
    return [m for m in net.modules() if isinstance(m, snntorch.SpikingNeuron)]


def reset(net: nn.Module) -> None:
    """Starts a new sequence in every stateful layer of ``net``.

    Clears the history of every :class:`~spatial_layers.SpatialDelay` and the state of
    every spsnn neuron module (as their ``reset_state()``) and, where ``net`` holds
    snnTorch neurons, calls ``snntorch.utils.reset`` on each module that holds them directly (it
    zeros and detaches their hidden state; snnTorch resets all instances of
    the neuron classes it finds).

    Example:
        >>> import torch
        >>> from spatial_layers import SpatialDelay
        >>> net = nn.Sequential(SpatialDelay(3, 2, max_delay=4, init_hidden=True))
        >>> _ = net(torch.ones(1, 3))
        >>> reset(net)
        >>> net[0]._stream is None
        True
    """
    for layer in _streaming_layers(net):
        layer.reset_state()
    neurons = _snntorch_neurons(net)
    if neurons:
        from snntorch import utils

        held = {id(n) for n in neurons}
        for parent in net.modules():
            if any(id(child) in held for child in parent.children()):
                utils.reset(parent)


def detach(net: nn.Module) -> None:
    """Truncated BPTT: cuts the gradient through the per-step state of every layer of ``net``.

    Every :class:`~spatial_layers.SpatialDelay` keeps its history and every spsnn neuron
    module its state (``detach_state()``);
    snnTorch's neurons keep their hidden state, detached by their class's
    ``detach_hidden()``. Call it between the chunks of a sequence, after
    ``loss.backward()``.
    """
    for layer in _streaming_layers(net):
        layer.detach_state()
    for kind in {type(neuron) for neuron in _snntorch_neurons(net)}:
        if hasattr(kind, "detach_hidden"):
            kind.detach_hidden()
