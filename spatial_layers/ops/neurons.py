r"""The neuron families with per-neuron constants as one autograd node: a custom op per direction.

``spsnn::neuron_forward`` runs one of three neuron families over a (T, B, C) sequence of
input currents, with per-neuron constants (a (K, C) tensor, learnable or not);
``spsnn::neuron_backward`` its gradient backwards in time: of the currents, of the
initial state and of every constant (reduced over time inside the loop, over the batch
by one sum). Families (:data:`FAMILIES`), with :math:`x_t` the input current, :math:`U`
the membrane (post-reset state), :math:`v_t` the membrane before an immediate reset and
:math:`\sigma` the Heaviside step with the arctan surrogate:

- ``"lif"`` (constants :math:`[\beta]`): :math:`v_t = \beta U_{t-1} + x_t`;
- ``"cuba"`` (constants :math:`[\beta, \alpha]`, snnTorch's ``Synaptic``):
  :math:`I_t = \alpha I_{t-1} + x_t`, :math:`v_t = \beta U_{t-1} + I_t`;
- ``"adlif"`` (constants :math:`[\beta, g, \rho, c_a, c_b]`, SE-adLIF): with
  :math:`g = 1 - \beta`, :math:`c_a = (1 - \rho) q a`, :math:`c_b = (1 - \rho) q b`,
  :math:`v_t = \beta u_{t-1} + g (x_t - w_{t-1})` and, after the spike and reset,
  :math:`w_t = \rho w_{t-1} + (c_a u_t + c_b S_t)` (symplectic Euler: the adaptation
  sees this step's reset membrane and spike).

Reset (``reset``: ``"subtract"``, ``"zero"``, ``"none"``), one step late as snnTorch
(``reset_delay``: :math:`U_t = v_t - \theta r_t`, :math:`U_t = v_t - v_t r_t` or
:math:`U_t = v_t`, with :math:`r_t = H(U_{t-1} - \theta)` detached, and
:math:`S_t = H(U_t - \theta)`), or at once (Norse, NIR, Lava / Loihi 2, SE-adLIF:
:math:`S_t = H(v_t - \theta)`, then :math:`U_t = v_t - \theta S_t`, :math:`v_t - v_t S_t`
or :math:`v_t`, the reset detached). The ``"adlif"`` family resets at once.

Layouts: ``state`` (S, B, C) and the ``traces`` output (S, T, B, C) hold the membrane in
row 0 and the family's second variable in row 1 (``cuba``: the current I; ``adlif``: the
adaptation w). The membrane trace is the value compared with the threshold: :math:`U_t`
with a late reset, :math:`v_t` (before the reset) with an immediate one. ``state`` holds
the post-reset state of step -1.

Numbers: constants are applied in float32 (float64 for float64 tensors), every
intermediate rounded to the tensor's dtype, in the order of the pure step functions of
:mod:`spatial_layers.neurons` (bit-equal to them, and to ``snn.Synaptic`` for ``cuba``);
the Triton backend (:mod:`spatial_layers.ops.triton_neurons`) runs the same operations
in the same order with contraction off, so its forward is bit-equal too. The backward
computes in float32 (float64 for float64 tensors).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spatial_layers.ops.neuron_spec import (
    CONSTANT_COUNT,
    STATE_COUNT,
    Spec,
    check_spec,
    compute_dtype,
)
from spatial_layers.surrogate import arctan_slope


# ------------------------------------------------------------------------ torch forward
class ForwardLoop:
    """The forward recursion of a family as a loop of in-place torch ops, one step per call.

    Holds the preallocated (T, B, C) spikes and (S, T, B, C) traces and the (B, C)
    scratch memory; :meth:`step` runs step t on a (B, C) input current (see the module doc
    for the equations and the order of operations). Used by :func:`neuron_forward_torch`
    and by the recurrent op, whose input adds the delayed feedback.
    """

    def __init__(self, like: Tensor, state: Tensor, constants: Tensor, spec: Spec) -> None:
        steps, batch, size = like.shape
        self.spec = spec
        dtype = self.dtype = like.dtype
        self.constants = constants.to(compute_dtype(like))
        self.spikes = torch.empty_like(like)
        self.traces = like.new_empty((STATE_COUNT[spec.family], steps, batch, size))
        self.scratch = [like.new_empty(batch, size) for _ in range(4)]
        self.fired = torch.empty(batch, size, dtype=torch.bool, device=like.device)
        state = state.to(dtype)
        self.membrane = state[0]
        self.second = state[1] if STATE_COUNT[spec.family] > 1 else None
        # A late reset reads the spike of the step before (before step 0: the state's).
        self.previous = (self.membrane > spec.threshold).to(dtype) if spec.reset_delay else None
        # With an immediate reset the post-reset membrane is kept apart from the trace (v_t).
        self.kept = None if spec.reset_delay else like.new_empty(batch, size)

    def step(self, t: int, current: Tensor) -> Tensor:
        """Step t on the (B, C) ``current``; returns the (B, C) spikes (a row of
        :attr:`spikes`)."""
        family, threshold, _, reset, late = self.spec
        constants, traces, spikes = self.constants, self.traces, self.spikes
        scaled, drive, product, extra = self.scratch
        if family == "lif":
            drive = current
        elif family == "cuba":
            torch.mul(self.second, constants[1], out=product)
            drive = self.second = torch.add(current, product, out=traces[1, t])
        else:  # adlif: g (x_t - w_{t-1})
            torch.sub(current, self.second, out=product)
            torch.mul(product, constants[1], out=drive)
        torch.mul(self.membrane, constants[0], out=scaled)
        out = traces[0, t]
        torch.add(drive, scaled, out=out)
        if late:
            apply_reset(out, self.previous, threshold, reset, out, product)
            torch.gt(out, threshold, out=self.fired)
            spike = self.previous = spikes[t].copy_(self.fired)
            self.membrane = out
        else:
            torch.gt(out, threshold, out=self.fired)
            spike = spikes[t].copy_(self.fired)
            self.membrane = apply_reset(out, spike, threshold, reset, self.kept, product)
        if family == "adlif":
            # w_t = rho w_{t-1} + (c_a u_t + c_b S_t)
            torch.mul(self.second, constants[2], out=scaled)
            torch.mul(self.membrane, constants[3], out=product)
            torch.mul(spike, constants[4], out=extra)
            product.add_(extra)
            self.second = torch.add(scaled, product, out=traces[1, t])
        return spike


def neuron_forward_torch(
    currents: Tensor, state: Tensor, constants: Tensor, spec: Spec
) -> tuple[Tensor, Tensor]:
    """(spikes (T, ..., C), traces (S, T, ..., C)) of the family on (T, ..., C) ``currents``:
    a loop over T of in-place torch ops into preallocated memory (:class:`ForwardLoop`)."""
    # The batch is named, not -1: a sequence of T = 0 steps has no elements to infer it from.
    batch = math.prod(currents.shape[1:-1])
    flat = currents.reshape(currents.shape[0], batch, currents.shape[-1])
    state = state.reshape(state.shape[0], *flat.shape[1:])
    loop = ForwardLoop(flat, state, constants, spec)
    for t, current in enumerate(flat):
        loop.step(t, current)
    shape = (flat.shape[0], *currents.shape[1:])
    return loop.spikes.view(shape), loop.traces.view(loop.traces.shape[0], *shape)


def apply_reset(
    value: Tensor, spike: Tensor, threshold: float, reset: str, out: Tensor, scratch: Tensor
) -> Tensor:
    """``value - threshold * spike`` (subtract), ``value - value * spike`` (zero) or
    ``value`` (none), written into ``out`` (which may be ``value``); returns it.

    ``spike`` is 0 or 1, so ``threshold * spike`` is exact; ``value - value * spike``
    is snnTorch's reset to zero (``mem - mem * reset``), bit for bit.
    """
    if reset == "subtract":
        return torch.sub(value, spike, alpha=threshold, out=out)
    if reset == "zero":
        torch.mul(value, spike, out=scratch)
        return torch.sub(value, scratch, out=out)
    return value if out is value else out.copy_(value)


# ----------------------------------------------------------------------- torch backward
class BackwardLoop:
    r"""The backward recursion of a family, one step per call, backwards in time.

    With :math:`G^v_t = \partial L / \partial v_t`, :math:`m_t` the derivative of the
    reset (:math:`1 - r_t` or :math:`1 - S_t` for a reset to zero, else 1) and
    :math:`\sigma'` the arctan surrogate:

    .. math::
        G^U_t = \beta G^v_{t+1} \;(+\, c_a G^w_t), \qquad
        G^S_t = g^S_t \;(+\, c_b G^w_t), \\
        \text{late reset: } G^v_t = m_t (g^U_t + G^U_t + \sigma'(U_t - \theta) G^S_t), \qquad
        \text{immediate: } G^v_t = g^v_t + m_t G^U_t + \sigma'(v_t - \theta) G^S_t

    and per family: ``lif`` :math:`G^x_t = G^v_t`; ``cuba``
    :math:`G^I_t = g^I_t + G^v_t + \alpha G^I_{t+1} = G^x_t`; ``adlif``
    :math:`G^w_t = g^w_t + \rho G^w_{t+1} - g G^v_{t+1}`, :math:`G^x_t = g G^v_t`.
    Constants: :math:`\partial L / \partial \beta = \sum G^v_t U_{t-1}`,
    :math:`\partial L / \partial \alpha = \sum G^I_t I_{t-1}`,
    :math:`\partial L / \partial g = \sum G^v_t (x_t - w_{t-1})`,
    :math:`\partial L / \partial \rho = \sum G^w_t w_{t-1}`,
    :math:`\partial L / \partial c_a = \sum G^w_t u_t`,
    :math:`\partial L / \partial c_b = \sum G^w_t S_t` (over t in the loop, over the batch
    by one sum in :meth:`finish`). ``currents`` is read only for ``adlif``'s :math:`g`.
    Computed in float32 (float64 for float64 traces).
    """

    def __init__(
        self,
        traces: Tensor,
        grad_spikes: Tensor | None,
        grad_traces: Tensor | None,
        state: Tensor,
        constants: Tensor,
        currents: Tensor | None,
        spec: Spec,
        need_constants: bool,
    ) -> None:
        work = compute_dtype(traces)
        self.spec = spec
        self.traces = traces.to(work)
        self.state = state.to(work)
        self.constants = constants.to(work)
        self.grad_spikes = grad_spikes
        self.grad_traces = grad_traces
        self.currents = None if currents is None else currents.to(work)
        membranes = self.traces[0]
        self.fired = (membranes > spec.threshold).to(work)  # S_t: the trace compared with theta
        self.slopes = arctan_slope(membranes - spec.threshold, spec.alpha)
        steps, batch, size = membranes.shape
        self.grad_currents = membranes.new_empty(steps, batch, size)
        count = CONSTANT_COUNT[spec.family]
        self.sums = membranes.new_zeros(count, batch, size) if need_constants else None
        self.zeros = membranes.new_zeros(batch, size)
        self.next_v = self.next_i = self.next_w = self.zeros

    def membrane_before(self, t: int) -> Tensor:
        """U_{t-1}, the post-reset membrane step t decays (the state before step 0)."""
        if t == 0:
            return self.state[0]
        spec = self.spec
        if spec.reset_delay:
            return self.traces[0, t - 1]
        return reset_value(self.traces[0, t - 1], self.fired[t - 1], spec.threshold, spec.reset)

    def step(self, t: int, feedback: Tensor | None = None) -> Tensor:
        """Step t (called for t = T-1 down to 0); ``feedback``: an extra gradient of the
        spikes S_t (the recurrent op's). Returns the (B, C) gradient of the input current."""
        family, threshold, _, reset, late = self.spec
        constants, work = self.constants, self.zeros.dtype
        grad_traces = self.grad_traces
        grad_u = constants[0] * self.next_v
        grad_s = self.zeros if self.grad_spikes is None else self.grad_spikes[t].to(work)
        if feedback is not None:
            grad_s = grad_s + feedback
        grad_w = None
        if family == "adlif":
            grad_w = constants[2] * self.next_w - constants[1] * self.next_v
            if grad_traces is not None:
                grad_w = grad_w + grad_traces[1, t]
            grad_u = grad_u + constants[3] * grad_w
            grad_s = grad_s + constants[4] * grad_w
        outside = None if grad_traces is None else grad_traces[0, t].to(work)
        if late:
            grad_v = grad_u + self.slopes[t] * grad_s
            if outside is not None:
                grad_v = grad_v + outside
            if reset == "zero":
                before = self.fired[t - 1] if t > 0 else (self.state[0] > threshold).to(work)
                grad_v = grad_v * (1 - before)
        else:
            if reset == "zero":
                grad_u = grad_u * (1 - self.fired[t])
            grad_v = grad_u + self.slopes[t] * grad_s
            if outside is not None:
                grad_v = grad_v + outside
        if family == "lif":
            grad_x = grad_v
        elif family == "cuba":
            grad_x = grad_v + constants[1] * self.next_i
            if grad_traces is not None:
                grad_x = grad_x + grad_traces[1, t]
            self.next_i = grad_x
        else:
            grad_x = constants[1] * grad_v
        self.grad_currents[t] = grad_x
        if self.sums is not None:
            self._sum_constants(t, grad_v, grad_x, grad_w)
        self.next_v = grad_v
        if grad_w is not None:
            self.next_w = grad_w
        return self.grad_currents[t]

    def _sum_constants(self, t: int, grad_v: Tensor, grad_x: Tensor, grad_w: Tensor | None):
        sums, traces, spec = self.sums, self.traces, self.spec
        sums[0].addcmul_(grad_v, self.membrane_before(t))
        if spec.family == "cuba":
            sums[1].addcmul_(grad_x, traces[1, t - 1] if t > 0 else self.state[1])
        elif spec.family == "adlif":
            previous_w = traces[1, t - 1] if t > 0 else self.state[1]
            if self.currents is not None:
                sums[1].addcmul_(grad_v, self.currents[t] - previous_w)
            sums[2].addcmul_(grad_w, previous_w)
            after = reset_value(traces[0, t], self.fired[t], spec.threshold, spec.reset)
            sums[3].addcmul_(grad_w, after)
            sums[4].addcmul_(grad_w, self.fired[t])

    def finish(self) -> tuple[Tensor, Tensor, Tensor]:
        """(T, B, C) current, (S, B, C) initial-state and (K, C) constant gradients."""
        constants, family = self.constants, self.spec.family
        grad_state = self.zeros.new_zeros(self.state.shape)
        grad_state[0] = constants[0] * self.next_v
        if family == "cuba":
            grad_state[1] = constants[1] * self.next_i
        elif family == "adlif":
            grad_state[1] = constants[2] * self.next_w - constants[1] * self.next_v
        if self.sums is None:
            grad_constants = constants.new_zeros(constants.shape)
        else:
            grad_constants = self.sums.sum(1)
        return self.grad_currents, grad_state, grad_constants


def neuron_backward_torch(
    traces: Tensor,
    grad_spikes: Tensor | None,
    grad_traces: Tensor | None,
    state: Tensor,
    constants: Tensor,
    currents: Tensor | None,
    spec: Spec,
    need_constants: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of the currents (T, ..., C), the initial state (S, ..., C) and the constants
    (K, C): :class:`BackwardLoop` backwards over T."""
    rows, steps, size = traces.shape[0], traces.shape[1], traces.shape[-1]
    batch = math.prod(traces.shape[2:-1])  # not -1: T = 0 leaves nothing to infer it from
    traces = traces.reshape(rows, steps, batch, size)
    if grad_spikes is not None:
        grad_spikes = grad_spikes.reshape(steps, batch, size)
    if grad_traces is not None:
        grad_traces = grad_traces.reshape(rows, steps, batch, size)
    if currents is not None:
        currents = currents.reshape(steps, batch, size)
    state = state.reshape(state.shape[0], batch, size)
    loop = BackwardLoop(
        traces, grad_spikes, grad_traces, state, constants, currents, spec, need_constants
    )
    for t in range(steps - 1, -1, -1):
        loop.step(t)
    return loop.finish()


def reset_value(value: Tensor, spike: Tensor, threshold: float, reset: str) -> Tensor:
    """The membrane after an immediate reset of ``value`` by ``spike`` (0 or 1)."""
    if reset == "subtract":
        return value - threshold * spike
    if reset == "zero":
        return value - value * spike
    return value


# ------------------------------------------------------------------------------ the ops
def _run_forward(currents, state, constants, spec, backend):
    # T = 0: nothing to launch a kernel over; the torch loop returns the empty tensors.
    if backend == "triton" and currents.shape[0] > 0:
        from spatial_layers.ops import triton_neurons

        return triton_neurons.neuron_forward(currents, state, constants, spec)
    return neuron_forward_torch(currents, state, constants, spec)


@torch.library.custom_op("spsnn::neuron_forward", mutates_args=())
def _neuron_forward(
    currents: Tensor,
    state: Tensor,
    constants: Tensor,
    family: str,
    threshold: float,
    alpha: float,
    reset: str,
    reset_delay: bool,
    backend: str,
) -> tuple[Tensor, Tensor]:
    """(spikes (T, B, C), traces (S, T, B, C)) of a neuron family (see the module doc).

    ``currents`` (T, ..., C), ``state`` (S, ..., C) and ``constants`` (K, C). A custom
    operator, so that ``torch.compile`` and CUDA graphs see the loop as one opaque op.
    Contiguous outputs in the dtype of ``currents``.
    """
    spec = Spec(family, threshold, alpha, reset, reset_delay)
    check_spec(spec, constants, state, currents)
    return _run_forward(currents.contiguous(), state, constants.contiguous(), spec, backend)


@_neuron_forward.register_fake
def _(currents, state, constants, family, threshold, alpha, reset, reset_delay, backend):
    traces = currents.new_empty((STATE_COUNT[family], *currents.shape))
    return currents.new_empty(currents.shape), traces


@torch.library.custom_op("spsnn::neuron_backward", mutates_args=())
def _neuron_backward(
    traces: Tensor,
    grad_spikes: Tensor | None,
    grad_traces: Tensor | None,
    state: Tensor,
    constants: Tensor,
    currents: Tensor | None,
    family: str,
    threshold: float,
    alpha: float,
    reset: str,
    reset_delay: bool,
    need_constants: bool,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of the currents, the initial state and the constants (see
    :func:`neuron_backward_torch`), in the dtypes of those inputs. A None gradient is an
    output that got none; without ``need_constants`` the constants' gradient is zeros."""
    spec = Spec(family, threshold, alpha, reset, reset_delay)
    traces = traces.contiguous()
    grad_spikes = None if grad_spikes is None else grad_spikes.contiguous()
    grad_traces = None if grad_traces is None else grad_traces.contiguous()
    if backend == "triton" and traces.shape[1] > 0:  # T = 0: as in _run_forward
        from spatial_layers.ops import triton_neurons

        grads = triton_neurons.neuron_backward(
            traces, grad_spikes, grad_traces, state, constants, currents, spec, need_constants
        )
    else:
        grads = neuron_backward_torch(
            traces, grad_spikes, grad_traces, state, constants, currents, spec, need_constants
        )
    grad_currents, grad_state, grad_constants = grads
    return (
        grad_currents.to(traces.dtype).view(traces.shape[1:]),
        grad_state.to(state.dtype).view(state.shape),
        grad_constants.to(constants.dtype),
    )


@_neuron_backward.register_fake
def _(traces, grad_spikes, grad_traces, state, constants, currents, *args):
    return (
        traces.new_empty(traces.shape[1:]),
        state.new_empty(state.shape),
        constants.new_empty(constants.shape),
    )


def _setup_neuron_context(ctx, inputs, output) -> None:
    currents, state, constants, family, threshold, alpha, reset, reset_delay, backend = inputs
    need_constants = bool(ctx.needs_input_grad[2])
    # adlif's g = 1 - beta needs x_t - w_{t-1}: the currents are kept only then.
    keep = family == "adlif" and need_constants
    ctx.save_for_backward(output[1], state, constants, currents if keep else None)
    ctx.constants = (family, threshold, alpha, reset, reset_delay, need_constants, backend)
    # An output without a gradient (the traces, mostly) arrives as None.
    ctx.set_materialize_grads(False)


def _neuron_forward_grad(ctx, grad_spikes: Tensor | None, grad_traces: Tensor | None):
    traces, state, constants, currents = ctx.saved_tensors
    family, threshold, alpha, reset, reset_delay, need_constants, backend = ctx.constants
    grad_currents, grad_state, grad_constants = torch.ops.spsnn.neuron_backward(
        traces, grad_spikes, grad_traces, state, constants, currents,
        family, threshold, alpha, reset, reset_delay, need_constants, backend,
    )  # fmt: skip
    return (
        grad_currents,
        grad_state,
        grad_constants if need_constants else None,
        *(None,) * 6,
    )


_neuron_forward.register_autograd(_neuron_forward_grad, setup_context=_setup_neuron_context)
