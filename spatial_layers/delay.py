"""SpatialDelay: a fully connected layer whose synapses have learnable delays.

The delay of synapse j -> i is set by geometry (``delays="spatial"``), by a
free parameter per synapse (``"free"``, the DCLS-delays baseline) or is zero
(``"none"``, a plain linear layer applied at every step). One code path serves
all three, so ablations differ in nothing but the delays.

The layer is the sequence form; its streaming form (``step``, ``init_hidden``,
:class:`SpatialDelayCell`) is :mod:`spatial_layers.streaming`, and what constrains its
weights (mask, Dale signs, k-bit weights) :mod:`spatial_layers.constraints`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spatial_layers.arguments import check_count, check_fits, check_flag, check_positive, is_int
from spatial_layers.constraints import WeightConstraints
from spatial_layers.finite import check_input, register_flag
from spatial_layers.functional import (
    DELAY_METHODS,
    DelayMethod,
    delayed_linear,
    interpolated_kernel,
)
from spatial_layers.geometry import (
    NeuronPositions,
    clamp_delays,
    coordinate_delays,
    default_position_scale,
)
from spatial_layers.kernels import (
    KERNEL_KINDS,
    KernelKind,
    default_sigma,
    delay_kernel,
    gaussian_kernel,
)
from spatial_layers.saved_settings import refuse_other_settings, setting_differences
from spatial_layers.streaming import StreamingDelay

DelayMode = Literal["spatial", "free", "none"]
DELAY_MODES: tuple[str, ...] = ("spatial", "free", "none")


def _population_size(population: NeuronPositions | int, role: str) -> int:
    if isinstance(population, NeuronPositions):
        return population.num_neurons
    if is_int(population) and population >= 1:
        return int(population)
    raise TypeError(f"{role} must be a NeuronPositions or a positive int, got {population!r}")


def _check_size(in_features: int, out_features: int, delays: str, factory: dict) -> None:
    """Raises MemoryError naming the size when the layer's tensors cannot fit in its device's
    memory (instead of an allocator failure, or the process killed, later)."""
    itemsize = torch.empty((), dtype=factory["dtype"]).element_size()
    per_synapse = itemsize * (2 if delays == "free" else 1) + 1  # weight (+ delay) + mask
    check_fits(
        f"SpatialDelay({in_features} -> {out_features})",
        in_features * out_features,
        "synapses",
        per_synapse,
        factory["device"],
        "use smaller populations",
    )


def max_delay_limit(dtype: torch.dtype) -> int:
    """The largest ``max_delay`` a layer of ``dtype`` takes: 2 / eps, up to which every whole
    number of steps is a number of ``dtype`` (2**24 for float32, 2**11 for float16, 2**8 for
    bfloat16). Beyond it, delays (floats in steps) skip whole steps: the layer would compute
    other delays than its coordinates give. (Fractions of a step thin out before, as the
    precision of any float does: the spacing is 1 step from 1 / eps on.)

    Example:
        >>> max_delay_limit(torch.float32), max_delay_limit(torch.bfloat16)
        (16777216, 256)
    """
    return round(2 / torch.finfo(dtype).eps)


def check_max_delay(max_delay: int, dtype: torch.dtype) -> None:
    """ValueError naming the value and the fix when ``max_delay`` is beyond
    :func:`max_delay_limit` of ``dtype``."""
    limit = max_delay_limit(dtype)
    if max_delay > limit:
        raise ValueError(
            f"max_delay={max_delay} steps is more than {dtype} delays can count: above "
            f"{limit} steps they skip whole steps (max_delay <= {limit}); use a coarser time "
            "step (fewer, longer steps) or a wider dtype (float64)"
        )


def _autocast_input(x: Tensor) -> bool:
    """True for a float input under autocast (Lightning's "16-mixed"/"bf16-mixed"),
    where half-precision activations meet float32 parameters by design."""
    try:
        return x.is_floating_point() and torch.is_autocast_enabled(x.device.type)
    except RuntimeError:  # a device type autocast does not know, such as "meta"
        return False


class SpatialDelay(StreamingDelay, WeightConstraints, nn.Module):
    r"""Delayed fully connected layer over time, delays from neuron coordinates.

    .. math::
        y_t[b, i] = \sum_j w_{ij} \sum_{k=0}^{d_{max}} K_k(d_{ij})\, x_{t-k}[b, j] + b_i,
        \qquad d_{ij} = \mathrm{clamp}(\lVert p_i - p_j \rVert / v, 0, d_{max})

    where :math:`K(d)` is the temporal kernel chosen by ``kernel`` (see
    :mod:`spatial_layers.kernels`). The convolution is causal.

    Args:
        pre: presynaptic population (a shared :class:`NeuronPositions`) or its
            size C_in, which creates private positions.
        post: postsynaptic population or its size C_out.
        max_delay: largest delay, in time steps (>= 0, at most :func:`max_delay_limit` of
            the dtype: 2**24 for float32).
        velocity: conduction velocity, space units per time step (> 0).
        kernel: ``"gauss"``, ``"linear"`` or ``"round"``.
        delays: ``"spatial"`` (from coordinates), ``"free"`` (one learnable
            delay per synapse) or ``"none"`` (no delay).
        bias: adds a learnable bias per output.
        dim: dimension of private positions created from ints.
        sigma: Gaussian width in steps; default
            :func:`~spatial_layers.kernels.default_sigma`, the wide start DCLS-delays
            anneals down from.
        check_finite: also check coordinates and free delays, and CUDA inputs at once
            (forces a device sync; for debugging, off by default). Inputs off CUDA are
            always checked (:mod:`spatial_layers.finite`).
        method: algorithm of the sequence forward, ``"auto"`` (chosen per call
            by :func:`~spatial_layers.functional.plan_delayed_linear`'s cost model),
            ``"dense"``, ``"fft"``, ``"dft"`` or ``"linear"`` (one tap only); the
            same numbers up to float rounding. Streaming (:meth:`step`) is always dense.
        init_hidden: snnTorch style: every call is one time step, (B, C_in) ->
            (B, C_out), with the history of the last ``max_delay`` inputs kept
            inside (as :meth:`step`; never in the state dict), for per-step
            loops ``net(x[t])`` through ``nn.Sequential`` next to
            ``snn.Leaky(init_hidden=True)``. Start each sequence with
            :meth:`reset_state` or :func:`spatial_layers.reset`; cut the
            gradient (truncated BPTT) with :meth:`detach_state`.
        batch_first: the sequence call takes and returns (B, T, C), as
            ``nn.RNN(batch_first=True)`` and tonic's ``PadTensors()`` batches.

    Shape:
        - Input: (T, B, C_in), time-major; (B, T, C_in) with ``batch_first``;
          (B, C_in), one step, with ``init_hidden``.
        - Output: (T, B, C_out), (B, T, C_out) or (B, C_out), as the input.

    Attributes:
        weight: (C_out, C_in) weights, as ``torch.nn.Linear`` names them.
        bias: (C_out,) or None.
        free_delays: (C_out, C_in) delays in steps (``delays="free"`` only).
        pre, post: the position modules (``delays="spatial"`` only).
        mask: (C_out, C_in) bool connectivity; False synapses are absent.
        sign: (C_in,) +1/-1 per presynaptic neuron when Dale's principle is
            on (the effective weight is then sign * |weight|), else None.
        sigma: Gaussian kernel width in steps (settable), a float view of the
            0-d buffer ``kernel_sigma`` that the forward reads and the state dict holds.
        kernel_kind: the delay kernel (settable; see the property).
        weight_bits: None (float weights), or k >= 2: the layer applies its
            effective weights quantised to k bits (symmetric, per layer,
            :mod:`spatial_layers.quantization`) with a straight-through
            gradient, for quantisation-aware training (settable).
        weight_scale: how the k-bit scale is chosen, ``"max"`` (max |w| / levels)
            or ``"power_of_two"`` (the power of two above it, for hardware with
            a per-layer weight exponent; settable).

    The state dict holds everything that changes what the layer computes: the
    tensors, ``sigma``, and (:meth:`get_extra_state`) the kernel kind, weight
    bits and weight scale rule, restored on load, and the delay mode, max delay
    and velocity, which a state only loads into a layer built with
    (``load_state_dict`` names a setting that differs).

    Example:
        >>> layer = SpatialDelay(4, 3, max_delay=5, kernel="linear")
        >>> layer(torch.zeros(10, 2, 4)).shape
        torch.Size([10, 2, 3])
    """

    def __init__(
        self,
        pre: NeuronPositions | int,
        post: NeuronPositions | int,
        max_delay: int,
        velocity: float = 1.0,
        kernel: KernelKind = "gauss",
        delays: DelayMode = "spatial",
        bias: bool = False,
        *,
        dim: int = 2,
        sigma: float | None = None,
        check_finite: bool = False,
        method: DelayMethod = "auto",
        init_hidden: bool = False,
        batch_first: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        in_features = _population_size(pre, "pre")
        out_features = _population_size(post, "post")
        max_delay = check_count("max_delay", max_delay, 0, "steps")
        check_max_delay(max_delay, dtype or torch.get_default_dtype())
        velocity = check_positive("velocity", velocity, "space units per step")
        for flag, value in (
            ("bias", bias),
            ("check_finite", check_finite),
            ("init_hidden", init_hidden),
            ("batch_first", batch_first),
        ):
            check_flag(flag, value)
        if delays not in DELAY_MODES:
            raise ValueError(f"delays must be one of {DELAY_MODES}, got {delays!r}")
        if max_delay == 0 and delays != "none":
            learned = "coordinates" if delays == "spatial" else "free delays"
            raise ValueError(
                f"max_delay=0 clamps every {delays} delay to 0: the {learned} would get no "
                "gradient yet count as parameters; use delays='none' for a layer without "
                "delays, or max_delay >= 1"
            )
        if method not in DELAY_METHODS:
            raise ValueError(f"method must be one of {DELAY_METHODS}, got {method!r}")
        if method == "linear" and delays != "none" and max_delay > 0:
            raise ValueError(
                f"method 'linear' applies one tap (no delay), but delays={delays!r} with "
                f"max_delay={max_delay} needs {max_delay + 1}: use 'auto', 'dense', 'fft' "
                "or 'dft', or delays='none'"
            )
        self.method: DelayMethod = method
        if init_hidden and batch_first:
            raise ValueError(
                "batch_first=True lays out whole sequences, but an init_hidden=True layer "
                "takes one (B, C_in) step per call: choose one"
            )
        self.init_hidden = init_hidden
        self.batch_first = batch_first
        self.in_features = in_features
        self.out_features = out_features
        self.max_delay = max_delay
        self.velocity = float(velocity)
        self._kernel_override: KernelKind | None = None  # set by use_kernel() only
        self.kernel_kind = kernel
        self.delay_mode: DelayMode = delays
        # A buffer, so that it is saved with the weights and a compiled or
        # graph-captured forward reads its current value (set in place).
        self.register_buffer("kernel_sigma", torch.ones((), device=device, dtype=dtype))
        self.sigma = default_sigma(max_delay) if sigma is None else sigma
        self.check_finite = check_finite
        factory = {"device": device, "dtype": dtype}
        _check_size(in_features, out_features, delays, factory)

        self.weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.free_delays = (
            nn.Parameter(torch.empty(out_features, in_features, **factory))
            if delays == "free"
            else None
        )
        if delays == "spatial":
            self.pre = self._positions(pre, dim, factory)
            self.post = self._positions(post, dim, factory)
            if self.pre.dim != self.post.dim:
                raise ValueError(
                    f"pre and post positions must share a dimension, got "
                    f"{self.pre.dim} and {self.post.dim}"
                )
        self._init_constraints(out_features, in_features, device)
        self._init_stream()
        register_flag(self)
        self.reset_parameters()

    def _positions(
        self, population: NeuronPositions | int, dim: int, factory: dict
    ) -> NeuronPositions:
        if isinstance(population, NeuronPositions):
            return population
        # Spread private neurons so that typical distances span the delay range.
        scale = default_position_scale(self.velocity, self.max_delay, dim)
        return NeuronPositions(population, dim, scale=scale, **factory)

    @property
    def kernel_kind(self) -> KernelKind:
        """Delay kernel of :meth:`forward`: ``"gauss"``, ``"linear"`` or ``"round"``
        (settable, validated, saved in the state dict). Inside :func:`use_kernel` it
        reads that block's kind, a mode like ``eval()`` that the state dict does not keep."""
        return self._kernel_override or self._kernel_kind

    @kernel_kind.setter
    def kernel_kind(self, kind: KernelKind) -> None:
        if kind not in KERNEL_KINDS:
            raise ValueError(f"kernel must be one of {KERNEL_KINDS}, got {kind!r}")
        self._kernel_kind = kind

    @property
    def sigma(self) -> float:
        """Gaussian kernel width in steps (settable; stored in the buffer ``kernel_sigma``)."""
        return float(self.kernel_sigma)

    @sigma.setter
    def sigma(self, value: float) -> None:
        value = check_positive("sigma", value, "steps")  # True is no width
        with torch.no_grad():
            self.kernel_sigma.fill_(value)

    def get_extra_state(self) -> dict:
        """The settings that change :meth:`forward` besides tensors, as plain data.

        ``delays``, ``max_delay`` and ``velocity`` define the layer: a state loads
        only into a layer built with the same. ``kernel``, ``weight_bits`` and
        ``weight_scale`` change during training (:class:`~lightning_modules.callbacks.
        RoundDelays`, :class:`~lightning_modules.callbacks.HardwareQAT`) and load with
        the weights, as ``sigma`` (a buffer) does.
        """
        bits = self.weight_bits
        return {  # builtin types only (a config may pass int subclasses): weights_only loads it
            "delays": str(self.delay_mode),
            "max_delay": int(self.max_delay),
            "velocity": float(self.velocity),
            "kernel": str(self._kernel_kind),
            "weight_bits": None if bits is None else int(bits),
            "weight_scale": str(self.weight_scale),
        }

    def set_extra_state(self, state: dict) -> None:
        """Restores the kernel kind and weight bits and scale rule (the defining settings
        were compared by ``load_state_dict`` before; states saved before the scale rule
        existed used ``"max"``)."""
        self.kernel_kind = state["kernel"]
        self.weight_bits = state["weight_bits"]
        self.weight_scale = state.get("weight_scale", "max")

    def _setting_differences(self, saved: dict) -> list[str]:
        names = ("delays", "max_delay") + (("velocity",) if self.delay_mode == "spatial" else ())
        built = self.get_extra_state()
        return setting_differences(saved, {name: built[name] for name in names}, "this layer")

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        saved = state_dict.get(prefix + "_extra_state")
        differences = self._setting_differences(saved) if isinstance(saved, dict) else []
        if refuse_other_settings(
            error_msgs, prefix.rstrip(".") or "SpatialDelay", "a layer", differences,
            "build the layer with the saved settings",
        ):  # fmt: skip
            return
        self._shape_sign_for(state_dict, prefix)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def reset_parameters(self) -> None:
        """Weights as ``nn.Linear``; free delays uniform over [0, max_delay]."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)
        if self.free_delays is not None:
            nn.init.uniform_(self.free_delays, 0.0, float(self.max_delay))

    def delays(self) -> Tensor:
        """(C_out, C_in) delay of every synapse, in steps, within [0, max_delay].

        NaN where a coordinate or free delay is NaN or Inf (:func:`clamp_delays`), so
        that it shows in the output instead of passing for a delay of 0 or max_delay.
        """
        if self.delay_mode == "spatial":
            return coordinate_delays(
                self.post.coords, self.pre.coords, self.velocity, self.max_delay
            )
        if self.delay_mode == "free":
            return clamp_delays(self.free_delays, self.max_delay)
        return self.weight.new_zeros(self.out_features, self.in_features)

    def kernel(self) -> Tensor:
        """(C_out, C_in, max_delay + 1) effective kernel: weight times delay kernel.

        With ``delays="none"`` all of a synapse's weight sits on tap 0 (no
        Gaussian spread, whatever ``kernel`` says), as :meth:`forward` applies it.
        """
        if self.delay_mode == "none":  # applied_kernel checks the others' size itself
            self.check_fits("kernel", self.out_features * self.in_features, self.max_delay + 1)
            return F.pad(self.applied_kernel(), (0, self.max_delay))
        return self.applied_kernel()

    def check_fits(self, tensor: str, rows: int, taps: int) -> None:
        """MemoryError naming the size when a ``tensor`` of ``rows`` x ``taps`` values (the
        kernel: C_out x C_in; a step's or chunk's history: B x C_in) cannot fit in the
        layer's device: before the allocator fails (or the process is killed)."""
        check_fits(
            f"SpatialDelay({self.in_features} -> {self.out_features}, max_delay="
            f"{self.max_delay})'s {tensor}",
            rows * taps,
            f"values ({rows} x {taps} taps)",
            self.weight.element_size(),
            self.weight.device,
            "use a smaller max_delay or fewer neurons (a sequence call builds min(T, "
            "max_delay + 1) taps; kernel(), step() and forward_chunk() all max_delay + 1)",
        )

    def applied_kernel(self, taps: int | None = None) -> Tensor:
        """The kernel ``forward`` convolves with, (C_out, C_in, min(taps, max_delay + 1)).

        Equal to :meth:`kernel`'s first ``taps`` taps (all of them for None), except
        (C_out, C_in, 1) for ``delays="none"``.
        """
        if self.delay_mode == "none":
            return self.effective_weight()[..., None]
        built = self.max_delay + 1 if taps is None else min(taps, self.max_delay + 1)
        self.check_fits("kernel", self.out_features * self.in_features, built)
        if self.kernel_kind == "gauss":  # weights and shape in one autograd node
            return gaussian_kernel(
                self.delays(),
                self.max_delay,
                self.kernel_sigma,
                taps=taps,
                weight=self.effective_weight(),
            )
        shape = delay_kernel(
            self.delays(), self.max_delay, self.kernel_kind, self.kernel_sigma, taps=taps
        )
        return self.effective_weight()[..., None] * shape

    def _check(self, x: Tensor, rank: int) -> None:
        if x.dim() != rank or x.shape[-1] != self.in_features:
            raise ValueError(
                f"expected input of shape {self._layout(rank)} with C_in={self.in_features}, "
                f"got {tuple(x.shape)}{self._layout_hint(x, rank)}"
            )
        if rank == 3 and x.shape[0] == 0:
            raise ValueError(f"the input has no time steps (shape {tuple(x.shape)}): need T >= 1")
        if x.device != self.weight.device or (
            x.dtype != self.weight.dtype and not _autocast_input(x)
        ):
            raise ValueError(
                f"input is {x.dtype} on {x.device} but the layer is "
                f"{self.weight.dtype} on {self.weight.device}"
            )
        check_max_delay(self.max_delay, self.weight.dtype)  # cast after construction
        if self.delay_mode == "spatial":
            for name, positions in (("pre", self.pre), ("post", self.post)):
                coords = positions.coords
                if coords.device != self.weight.device or coords.dtype != self.weight.dtype:
                    raise ValueError(
                        f"{name} positions are {coords.dtype} on {coords.device} but the "
                        f"layer is {self.weight.dtype} on {self.weight.device}; move both "
                        "with .to()"
                    )
        check_input(self, x, f"SpatialDelay({self.in_features} -> {self.out_features})")
        if self.check_finite:
            self._check_finite(x)

    def _layout(self, rank: int) -> str:
        if rank == 2:
            return "(B, C_in)"
        return "(B, T, C_in)" if self.batch_first else "(T, B, C_in)"

    def _layout_hint(self, x: Tensor, rank: int) -> str:
        """Names the call that takes ``x``'s layout, when it is the other mode's."""
        if rank == 3 and x.dim() == 2:
            return (
                "; for one (B, C_in) step per call build the layer with init_hidden=True "
                "(snnTorch style), call layer.step(x_t), or wrap it in "
                "SpatialDelayCell(layer) (Norse style, forward(x_t, state) -> (y_t, state): "
                "what norse.torch.Lift and SequentialState treat as stateful); a sequence "
                "in (T, B, C_in) chunks goes through layer.forward_chunk(x, state)"
            )
        if rank == 2 and x.dim() == 3:
            if self.init_hidden:
                return (
                    "; this layer was built with init_hidden=True (one step per call): for "
                    "whole (T, B, C_in) sequences build it with init_hidden=False"
                )
            return "; step() takes one time step: call the layer itself on whole sequences"
        return ""

    def _check_finite(self, x: Tensor) -> None:
        if not torch.isfinite(x).all():
            raise ValueError("input contains NaN or Inf")
        if self.delay_mode == "spatial":
            for name, positions in (("pre", self.pre), ("post", self.post)):
                if not torch.isfinite(positions.coords).all():
                    raise ValueError(f"{name} coordinates contain NaN or Inf")
        if self.free_delays is not None and not torch.isfinite(self.free_delays).all():
            raise ValueError("free delays contain NaN or Inf")

    def forward(self, x: Tensor) -> Tensor:
        """Maps a (T, B, C_in) sequence to (T, B, C_out); (B, T, C) in and out with
        ``batch_first``; one (B, C_in) step to (B, C_out) with ``init_hidden``.

        A sequence builds min(max_delay + 1, T) taps: tap k >= T would only meet the
        zeros before step 0 (all max_delay + 1 when T is symbolic, under
        ``torch.export`` with a dynamic T).
        """
        if self.init_hidden:
            return self.step(x)
        if self.batch_first:
            if x.dim() != 3:
                self._check(x, rank=3)  # raises, naming the layout
            return self._forward_time_major(x.transpose(0, 1)).transpose(0, 1)
        return self._forward_time_major(x)

    def _forward_time_major(self, x: Tensor) -> Tensor:
        self._check(x, rank=3)
        steps = x.shape[0]
        # A symbolic T (torch.export, dynamic shapes): the whole kernel, whose taps >= T
        # meet only zeros, so that the graph holds for every T (no min() on T).
        taps = (
            self.max_delay + 1
            if isinstance(steps, torch.SymInt)
            else min(self.max_delay + 1, steps)
        )
        if self.delay_mode != "none" and self.kernel_kind in ("linear", "round"):
            kernel = self._interpolated_kernel(taps)
        else:
            kernel = self.applied_kernel(taps)
        return delayed_linear(x, kernel, self.bias, method=self.method)

    def _interpolated_kernel(self, taps: int) -> Tensor:
        """``applied_kernel(taps)``'s numbers for the linear and round kernels, without
        K-sized autograd intermediates (:func:`interpolated_kernel`).

        Built up to tap min(max_delay, taps), one past the last kept when the kernel
        is cut: a delay beyond the cut lands there and is dropped with it, so values
        and gradients are those of the full kernel's first ``taps`` taps. A NaN delay
        makes its synapse's weight NaN, so that it shows (rounding puts it on tap 0).
        """
        self.check_fits("kernel", self.out_features * self.in_features, taps)
        delays = self.delays()
        weight = torch.where(torch.isnan(delays), delays, self.effective_weight())
        kernel = interpolated_kernel(weight, delays, min(self.max_delay, taps), self.kernel_kind)
        return kernel[..., :taps]

    def __prepare_scriptable__(self) -> nn.Module:
        # torch.jit.script calls this on every module it compiles, before compiling.
        raise TypeError(
            "torch.jit.script cannot compile SpatialDelay (TorchScript is deprecated in "
            "torch); use torch.compile(model) or torch.export.export(model, (x,)), which "
            "spsnn supports and tests"
        )

    def extra_repr(self) -> str:
        text = (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"max_delay={self.max_delay}, delays={self.delay_mode!r}, kernel={self.kernel_kind!r}"
        )
        if self.delay_mode == "spatial":
            text += f", velocity={self.velocity}"
        if self.kernel_kind == "gauss" and self.delay_mode != "none":
            text += f", sigma={self.sigma:g}"
        if self.weight_bits is not None:
            text += f", weight_bits={self.weight_bits}"
            if self.weight_scale != "max":
                text += f", weight_scale={self.weight_scale!r}"
        for flag in ("init_hidden", "batch_first"):
            if getattr(self, flag):
                text += f", {flag}=True"
        return text + f", method={self.method!r}, bias={self.bias is not None}"


def delay_layers(module: nn.Module) -> list[SpatialDelay]:
    """Every :class:`SpatialDelay` in ``module`` (itself included), in ``modules()`` order."""
    return [m for m in module.modules() if isinstance(m, SpatialDelay)]


@contextmanager
def use_kernel(module: nn.Module, kind: KernelKind | None) -> Iterator[list[SpatialDelay]]:
    """Runs every :class:`SpatialDelay` of ``module`` with the ``kind`` kernel, then restores.

    ``None`` changes nothing (a convenience for optional evaluation kernels).
    Each layer gets back the kind it had on entry, also when the block raises.
    A mode, like ``eval()``: a state dict saved inside the block keeps each
    layer's own kind (checkpoints written during validation resume training
    with the training kernel).

    Example:
        >>> net = nn.Sequential(SpatialDelay(2, 3, max_delay=4), SpatialDelay(3, 1, max_delay=4))
        >>> with use_kernel(net, "round"):
        ...     [layer.kernel_kind for layer in delay_layers(net)]
        ['round', 'round']
        >>> [layer.kernel_kind for layer in delay_layers(net)]
        ['gauss', 'gauss']
    """
    layers = delay_layers(module)
    if kind is None:
        yield layers
        return
    if kind not in KERNEL_KINDS:
        raise ValueError(f"kernel must be one of {KERNEL_KINDS}, got {kind!r}")
    saved = [layer._kernel_override for layer in layers]
    try:
        for layer in layers:
            layer._kernel_override = kind
        yield layers
    finally:
        for layer, previous in zip(layers, saved, strict=True):
            layer._kernel_override = previous
