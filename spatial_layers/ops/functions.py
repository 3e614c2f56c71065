"""Autograd Functions around spsnn's custom ops, for ``torch.func`` transforms.

A custom op's ``register_autograd`` formula serves eager autograd, ``torch.compile`` and
``torch.export``, but ``torch.func.grad``, ``jacrev`` and ``vmap`` refuse it (its generated
Function has no separate ``setup_context``). The library therefore calls each forward op
through the :class:`torch.autograd.Function` here: the same op forward (called with grad
mode off, so its own formula stays out), the same ``setup_context`` and backward formula
(the backward op, first order: run without grad), and ``generate_vmap_rule``, which
batches both through the ops' batching rules (:mod:`spatial_layers.ops.batching`). Eager
numbers and op counts are those of the ops themselves: one op per direction.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from spatial_layers.ops import leaky, neurons, recurrent, scan


def _function(name: str, op: Callable, setup: Callable, formula: Callable) -> type:
    def forward(*args):
        return op(*args)

    def backward(ctx, *grads):
        # The backward ops have no formula of their own: first-order gradients only.
        with torch.no_grad():
            return formula(ctx, *grads)

    return type(
        name,
        (torch.autograd.Function,),
        {
            "__doc__": f"``{op}`` with its autograd formula, usable under ``torch.func``.",
            "generate_vmap_rule": True,
            "forward": staticmethod(forward),
            "setup_context": staticmethod(setup),
            "backward": staticmethod(backward),
        },
    )


LeakyFunction = _function(
    "LeakyFunction",
    torch.ops.spsnn.leaky_forward.default,
    leaky._setup_leaky_context,
    leaky._leaky_forward_grad,
)
NeuronFunction = _function(
    "NeuronFunction",
    torch.ops.spsnn.neuron_forward.default,
    neurons._setup_neuron_context,
    neurons._neuron_forward_grad,
)
RecurrentLeakyFunction = _function(
    "RecurrentLeakyFunction",
    torch.ops.spsnn.recurrent_leaky_forward.default,
    recurrent._setup_recurrent_context,
    recurrent._recurrent_forward_grad,
)
RecurrentNeuronFunction = _function(
    "RecurrentNeuronFunction",
    torch.ops.spsnn.recurrent_neuron_forward.default,
    recurrent._setup_recurrent_neuron_context,
    recurrent._recurrent_neuron_forward_grad,
)


def fused_leaky(*args):
    """``spsnn::leaky_forward`` (same arguments), differentiable also under ``torch.func``;
    a scan inside :func:`~spatial_layers.ops.scan.loops_as_scan` (export to ONNX)."""
    if scan.active():
        currents, membrane, beta, threshold, _, spiking, _ = args
        return scan.leaky_forward_scan(currents, membrane, beta, threshold, spiking)
    return LeakyFunction.apply(*args)


def fused_neurons(*args):
    """``spsnn::neuron_forward`` (same arguments), differentiable also under ``torch.func``."""
    _refuse_scan("the cuba and adlif families, and a LIF with per-neuron constants")
    return NeuronFunction.apply(*args)


def fused_recurrent_leaky(*args):
    """``spsnn::recurrent_leaky_forward``, differentiable also under ``torch.func``; a scan
    inside :func:`~spatial_layers.ops.scan.loops_as_scan` (export to ONNX)."""
    if scan.active():
        currents, kernel, bias, beta, threshold, _, _ = args
        return scan.recurrent_leaky_forward_scan(currents, kernel, bias, beta, threshold)
    return RecurrentLeakyFunction.apply(*args)


def fused_recurrent_neurons(*args):
    """``spsnn::recurrent_neuron_forward``, differentiable also under ``torch.func``."""
    _refuse_scan("the cuba and adlif families, and a LIF with per-neuron constants")
    return RecurrentNeuronFunction.apply(*args)


def _refuse_scan(what: str) -> None:
    if scan.active():
        raise ValueError(
            f"ONNX export runs the LIF with one constant beta as a scan; {what} have no "
            "ONNX form yet: export with torch.export (spsnn's ops stay custom ops) or to NIR"
        )
