"""Non-finite input never gives a result: NaN or Inf in a layer's or a network's input is an error.

A NaN spike time or an overflowed feature would otherwise flow through the delays and
neurons and come out as a finite, plausible prediction (spikes of a LIF compare
``U > theta``, which is False for NaN). :func:`check_input` is called on every input of
:class:`~spatial_layers.SpatialDelay` and :class:`~spatial_layers.SpatialSNN`:

- a tensor off CUDA is checked at once: :class:`NonFiniteInputError` names the module,
  how many values are NaN and Inf, the first one's position, and the fix;
- a CUDA tensor (and any tensor under ``torch.compile``) is checked without making the
  host wait for the GPU (that would cost a sync per step): the module ORs ``any value
  non-finite`` into a 0-d bool buffer on the device, ``nonfinite_input``, and
  :func:`raise_if_nonfinite` reads the flags of a whole network with one sync. The
  training app calls it every step off CUDA, at every logging interval on CUDA, and
  before it reports or writes evaluation results; a plain-torch loop on CUDA calls it
  where it reads results anyway.

A graph made by ``torch.export`` (and what is exported from it, e.g. ONNX) holds no
check: validate the input where such a graph runs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch._subclasses.fake_tensor import FakeTensor

from spatial_layers.spike_dropout import binary_level

#: The name of the 0-d bool buffer in which a module records non-finite CUDA input.
FLAG = "nonfinite_input"

FIX = (
    "look for NaN/Inf in the data (spike times, features) or a transform that overflows; "
    "torch.nan_to_num(x) replaces them if that is what you want"
)


class NonFiniteInputError(ValueError):
    """NaN or Inf in the input of a layer or network (the message names where and the fix)."""


def register_flag(module: nn.Module) -> None:
    """Gives ``module`` the non-persistent buffer :data:`FLAG` (False: nothing seen)."""
    module.register_buffer(FLAG, torch.zeros((), dtype=torch.bool), persistent=False)


def describe(x: Tensor) -> str | None:
    """``"3 NaN and 1 Inf values of the (T, B, C) input, the first at [t, b, c]"``, or None
    when every value is finite (reads ``x`` on the host)."""
    bad = ~torch.isfinite(x)
    if not bool(bad.any()):
        return None
    nans = int(torch.isnan(x).sum())
    first = [int(i) for i in bad.nonzero()[0]]
    return (
        f"{nans} NaN and {int(bad.sum()) - nans} Inf values of the {tuple(x.shape)} input, "
        f"the first at {first}"
    )


def check_input(module: nn.Module, x: Tensor, where: str) -> None:
    """Raises :class:`NonFiniteInputError` for a non-finite ``x`` off CUDA; on CUDA, records
    it in ``module``'s :data:`FLAG` buffer instead (no host sync).

    Not checked: an ``x`` that an enclosing :func:`~spatial_layers.spike_dropout.binary_saves`
    declared binary (the hidden spikes a network passes between its layers: 0 or one
    level, finite by construction), and anything inside ``torch.export`` (an exported
    program is a standalone graph without the flag's reader). Inside ``torch.compile`` the
    flag records it on every device (a host check would break the graph).
    """
    if not x.is_floating_point() or x.device.type == "meta" or isinstance(x, FakeTensor):
        return
    if binary_level(x) is not None or torch.compiler.is_exporting():
        return
    if x.is_cuda or torch.compiler.is_compiling():  # no host sync, and traceable
        flag = getattr(module, FLAG)
        flag.logical_or_(~torch.isfinite(x).all())
        return
    # Under torch.func transforms (vmap: no data-dependent Python), the tensor underneath
    # is checked: every vmapped slice at once.
    while torch._C._functorch.is_functorch_wrapped_tensor(x):
        x = torch._C._functorch.get_unwrapped(x)
    found = describe(x)
    if found is not None:
        raise NonFiniteInputError(f"{where}: {found}: {FIX}")


def raise_if_nonfinite(module: nn.Module) -> None:
    """Raises :class:`NonFiniteInputError` if a module of ``module`` recorded non-finite CUDA
    input since the last call (one host sync for all of them), and clears the flags.

    Example:
        >>> from spatial_layers import SpatialSNN
        >>> raise_if_nonfinite(SpatialSNN(3, 2, [4]))  # nothing seen: returns
    """
    flagged = [
        (name or type(m).__name__, getattr(m, FLAG))
        for name, m in module.named_modules()
        if isinstance(getattr(m, FLAG, None), Tensor)
    ]
    if not flagged:
        return
    device = flagged[0][1].device
    seen = torch.stack([flag.to(device) for _, flag in flagged]).tolist()  # one sync
    names = [name for (name, _), hit in zip(flagged, seen, strict=True) if hit]
    for _, flag in flagged:
        flag.zero_()
    if names:
        raise NonFiniteInputError(
            f"NaN or Inf reached the input of {', '.join(names)} since the last check: {FIX}"
        )
