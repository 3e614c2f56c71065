"""Pure delayed-synapse operators: sequence mode and streaming step mode.

Both take an *effective kernel* ``kernel`` of shape (C_out, C_in, K) whose tap
k weighs the input from k steps ago (K = max_delay + 1):

.. math::
    y_t[b, i] = \\sum_j \\sum_{k=0}^{K-1} \\mathrm{kernel}[i, j, k]\\, x_{t-k}[b, j]
        + \\mathrm{bias}[i]

with x_t = 0 for t < 0 (causal, zero initial history).

Sequence mode has four algorithms with the same numbers (up to float
rounding), chosen per call by :func:`plan_delayed_linear`:

* ``"linear"``: K == 1, a plain ``F.linear`` at every step.
* ``"dense"``: a causal ``conv1d``; its cost grows as T * K.
* ``"fft"``: the convolution theorem over time (overlap-save): the padded
  input and the kernel are Fourier transformed along time (length N >= L + K - 1
  per block of L output steps), multiplied by one complex matrix product per
  frequency (summing over C_in), and transformed back. Its cost grows as
  T + K instead of T * K.
* ``"dft"``: the same spectral product over the whole sequence (one block),
  with the transforms done as real matrix products by the (2F, T) DFT
  matrix applied to the time-major input: no layout copies and no FFT calls,
  cheaper than ``"fft"`` while T is small against the channel counts
  (T=100 of SHD), dearer for long sequences.

The spectral paths mix all steps of a block, so an output at step t may change by
float rounding (never more) when an input after t changes; the dense path is
causal bit for bit. Streaming (:func:`delayed_step`) is exact and always dense.
The spectral paths are device-agnostic torch ops but were only measured and
tested on CPU; the planner's cost constants are CPU measurements.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from spatial_layers.constants import cached
from spatial_layers.kernels import round_delays
from spatial_layers.spike_dropout import binary_level, unpack_binary
from spatial_layers.vmap_rules import batched_first, per_slice

DelayMethod = Literal["auto", "linear", "dense", "fft", "dft"]
DELAY_METHODS: tuple[str, ...] = ("auto", "linear", "dense", "fft", "dft")

#: Cost of one FFT butterfly level per element, in units of one multiply-add
#: of a matrix product (measured on a 2-core AVX2 CPU with MKL: an FFT pass
#: plus the layout copies around it run ~40x below matmul throughput).
FFT_COST_PER_ELEMENT_LEVEL = 40.0
#: A complex multiply-add is 4 real multiply-adds.
COMPLEX_MATMUL_COST = 4.0


class DelayState(NamedTuple):
    """Streaming state of a delayed connection.

    Attributes:
        history: (B, C_in, K) past inputs, ``history[..., k]`` = x_{t-k}.
    """

    history: Tensor


class DelayPlan(NamedTuple):
    """How :func:`delayed_linear` computes one call.

    Attributes:
        method: ``"linear"``, ``"dense"`` or ``"fft"``.
        fft_size: transform length N of the FFT path (0 otherwise).
        block: output steps per overlap-save block L (T when one block).
        cost: the model's estimate in matrix multiply-adds (forward pass).
    """

    method: str
    fft_size: int = 0
    block: int = 0
    cost: float = 0.0


def _smooth_size(n: int) -> int:
    """Smallest m >= n whose only prime factors are 2, 3 and 5 (fast FFT lengths)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _fft_cost(steps: int, batch: int, c_in: int, c_out: int, taps: int, size: int) -> float:
    block = size - taps + 1
    blocks = -(-steps // block)
    freqs = size // 2 + 1
    matmul = COMPLEX_MATMUL_COST * freqs * blocks * batch * c_in * c_out
    rows = c_out * c_in + blocks * batch * (c_in + c_out)
    transforms = FFT_COST_PER_ELEMENT_LEVEL * rows * size * math.log2(size)
    return matmul + transforms


def plan_delayed_linear(
    steps: int,
    batch: int,
    in_features: int,
    out_features: int,
    taps: int,
    method: DelayMethod = "auto",
) -> DelayPlan:
    """Chooses the algorithm of :func:`delayed_linear` for a shape (pure; no data).

    ``"auto"`` takes the cheapest by a cost model counting matrix
    multiply-adds (dense: T * B * C_in * C_out * K; spectral: one complex
    product per frequency and block, plus the transforms of input, output
    and kernel, as FFTs or as DFT matrix products), over the dense path, the
    whole-sequence DFT, and FFTs of the whole sequence or of overlap-save
    blocks of smooth lengths between 2K and the whole sequence.

    Example:
        >>> plan_delayed_linear(100, 256, 140, 256, 25).method
        'dft'
        >>> plan_delayed_linear(1000, 16, 256, 256, 251).method
        'fft'
        >>> plan_delayed_linear(10, 2, 3, 4, 4).method
        'dense'
    """
    if method not in DELAY_METHODS:
        raise ValueError(f"method must be one of {DELAY_METHODS}, got {method!r}")
    if isinstance(steps, torch.SymInt) or isinstance(batch, torch.SymInt):
        return _symbolic_plan(taps, method)
    if steps < 1:
        raise ValueError(f"a sequence needs at least one time step, got T={steps}")
    if taps == 1 or method == "linear":
        if taps != 1:
            raise ValueError(f"method 'linear' needs a single tap, got K={taps}")
        return DelayPlan("linear", cost=float(steps * batch * in_features * out_features))
    dense = DelayPlan("dense", cost=float(steps * batch * in_features * out_features * taps))
    if method == "dense":
        return dense
    whole = _smooth_size(steps + taps - 1)
    sizes = {whole}
    size = _smooth_size(2 * taps)
    while size < whole:
        sizes.add(size)
        size = _smooth_size(size + 1) if size < 64 else _smooth_size(int(size * 1.25))
    best = min(
        (
            DelayPlan(
                "fft",
                size,
                min(size - taps + 1, steps),
                _fft_cost(steps, batch, in_features, out_features, taps, size),
            )
            for size in sizes
        ),
        key=lambda plan: plan.cost,
    )
    whole_freqs = whole // 2 + 1
    dft = DelayPlan(
        "dft",
        whole,
        steps,
        COMPLEX_MATMUL_COST * whole_freqs * batch * in_features * out_features
        + 2 * whole_freqs * steps * batch * (in_features + out_features)
        + 2 * whole_freqs * taps * in_features * out_features,
    )
    if method == "fft":
        return best
    if method == "dft":
        return dft
    return min((dense, best, dft), key=lambda plan: plan.cost)


def _symbolic_plan(taps: int, method: DelayMethod) -> DelayPlan:
    """The plan for a symbolic T or B (``torch.export`` with dynamic shapes): one graph
    for every shape, so no choice by the cost model; the dense path (a conv1d) or the
    linear one. The spectral paths size their transforms and chunks by T and B."""
    if method in ("fft", "dft"):
        raise ValueError(
            f"method {method!r} sizes its transforms by T and B, which are symbolic here "
            "(torch.export with dynamic shapes): use method='auto' or 'dense' (both run "
            "the dense path then), or export with static shapes"
        )
    if taps == 1 or method == "linear":
        if taps != 1:
            raise ValueError(f"method 'linear' needs a single tap, got K={taps}")
        return DelayPlan("linear")
    return DelayPlan("dense")


def delayed_linear(
    x: Tensor, kernel: Tensor, bias: Tensor | None = None, *, method: DelayMethod = "auto"
) -> Tensor:
    """Causal delayed linear map over a whole sequence.

    Args:
        x: (T, B, C_in) input, time-major.
        kernel: (C_out, C_in, K) effective kernel, tap k = delay of k steps.
        bias: optional (C_out,).
        method: ``"auto"`` (see :func:`plan_delayed_linear`), ``"dense"``,
            ``"fft"``, ``"dft"`` or ``"linear"`` (K == 1 only).

    Returns:
        (T, B, C_out).
    """
    steps, batch, c_in = x.shape
    c_out, _, taps = kernel.shape
    plan = plan_delayed_linear(steps, batch, c_in, c_out, taps, method)
    if plan.method == "linear":
        return F.linear(x, kernel[..., 0], bias)
    if plan.method in ("fft", "dft"):
        return _spectral_delayed_linear(x, kernel, bias, plan)
    # conv1d is a cross-correlation over (B, C_in, T): pad the past with K - 1
    # zeros and flip the taps so that tap k meets x_{t-k}.
    signal = F.pad(x.permute(1, 2, 0), (taps - 1, 0))
    y = F.conv1d(signal, kernel.flip(-1), bias)
    return y.permute(2, 0, 1)


def _input_spectrum(x: Tensor, taps: int, size: int, block: int) -> Tensor:
    """(T, B, C) -> (F, B * blocks, C) spectra of the overlap-save input windows."""
    steps, batch, channels = x.shape
    blocks = -(-steps // block)
    # (B, C, K - 1 + blocks * L), time last and contiguous for the FFT.
    signal = F.pad(x.permute(1, 2, 0), (taps - 1, blocks * block - steps))
    # Block m sees steps m*L - (K - 1) .. m*L + L - 1: (B, C, blocks, L + K - 1).
    windows = signal.unfold(-1, block + taps - 1, block)
    spectrum = torch.fft.rfft(windows, n=size, dim=-1)  # (B, C, blocks, F)
    freqs = spectrum.shape[-1]
    # Contiguous (F, B * blocks, C): a strided batch makes bmm copy every matrix.
    return spectrum.permute(3, 0, 2, 1).reshape(freqs, batch * blocks, channels).contiguous()


def _output_spectrum(y: Tensor, taps: int, size: int, block: int) -> Tensor:
    """(T, B, C) -> (F, B * blocks, C) spectra of output blocks placed at K - 1 .. K - 2 + L."""
    steps, batch, channels = y.shape
    blocks = -(-steps // block)
    signal = F.pad(y.permute(1, 2, 0), (0, blocks * block - steps))
    signal = F.pad(signal.reshape(batch, channels, blocks, block), (taps - 1, 0))
    spectrum = torch.fft.rfft(signal, n=size, dim=-1)  # (B, C, blocks, F)
    freqs = spectrum.shape[-1]
    return spectrum.permute(3, 0, 2, 1).reshape(freqs, batch * blocks, channels).contiguous()


def _transfer(kernel: Tensor, size: int) -> Tensor:
    """(C_out, C_in, K) kernel -> (F, C_in, C_out) transfer functions."""
    return torch.fft.rfft(kernel, n=size, dim=-1).permute(2, 1, 0).contiguous()


def _channel_chunk(channels: int, taps: int, size: int) -> int:
    """Output channels per chunk so that a chunk's (F, C_in, chunk) spectrum or
    (chunk, C_in, N) lags stay about the kernel's size (N > K: a whole one is N / K
    kernels, the memory that would grow with max_delay)."""
    return max(1, channels * taps // size)


#: Smallest spectrum a batch chunk of the one-block FFT path may hold, in complex
#: elements (32 MiB at complex64): smaller chunks only add launches.
MIN_CHUNK_SPECTRUM = 2**22


def _batch_rows(batch: int, freqs: int, channels: int, kernel_numel: int) -> int:
    """Batch rows per chunk of the one-block FFT path: a chunk's (F, rows, C) spectrum
    stays about the kernel's size (at least :data:`MIN_CHUNK_SPECTRUM`), so that the
    transients of a layer do not grow with the batch."""
    budget = max(kernel_numel, MIN_CHUNK_SPECTRUM)
    return max(1, min(batch, budget // (freqs * channels)))


def _whole_fft_convolve(x: Tensor, kernel: Tensor, size: int) -> Tensor:
    """Causal convolution of (T, B, C_in) with a (C_out, C_in, K) kernel in one block.

    With N >= T + K - 1 the circular convolution of x (at steps 0 .. T - 1, zeros
    after) with the taps equals the linear one at steps 0 .. T - 1, so the transforms
    run along the time axis of the time-major tensors: no padding copy, no layout copy.
    The batch runs in chunks (:func:`_batch_rows`), output channels in chunks
    (:func:`_channel_chunk`).
    """
    steps, batch, c_in = x.shape
    c_out, _, taps = kernel.shape
    rows = _batch_rows(batch, size // 2 + 1, c_in, kernel.numel())
    chunk = _channel_chunk(c_out, taps, size)
    y = x.new_empty(steps, batch, c_out)
    for first in range(0, batch, rows):
        part_b = slice(first, first + rows)
        spectrum = torch.fft.rfft(x[:, part_b], n=size, dim=0)  # (F, rows, C_in)
        for start in range(0, c_out, chunk):
            part = slice(start, start + chunk)
            product = torch.bmm(spectrum, _transfer(kernel[part], size))  # (F, rows, chunk)
            y[:, part_b, part] = torch.fft.irfft(product, n=size, dim=0)[:steps]
    return y


def _whole_fft_backward(
    x: Tensor,
    kernel: Tensor,
    grad: Tensor,
    size: int,
    needs: tuple[bool, bool],
    level: float | None = None,
) -> tuple[Tensor | None, Tensor | None]:
    r"""Input and kernel gradients of :func:`_whole_fft_convolve`, batch chunk by chunk.

    ``x`` is the (T, B, C_in) input, or with a ``level`` its nonzero elements (bool):
    then each batch chunk is rebuilt as 0 or ``level`` when read, never the whole input.

    Input: the anti-causal correlation :math:`\sum_k \mathrm{kernel}_k^\top g_{t+k}`
    is :math:`\mathrm{irfft}(G_f \overline{H_f}^\top)` at steps 0 .. T - 1 (lags up to
    T + K - 2 < N never wrap). Kernel: :math:`\sum_{t,b} g_t x_{t-k}^\top` for
    k < K is lag k of the circular cross-correlation, computed conjugated,
    :math:`\mathrm{irfft}(X_f^\top \overline{G_f})`, which reverses the lags; each
    batch chunk adds its lags to the kernel gradient. One spectrum of the gradient
    serves both; conjugates are taken of channel chunks only (they are materialised).
    """
    steps, batch, c_in = x.shape
    c_out, _, taps = kernel.shape
    rows = _batch_rows(batch, size // 2 + 1, max(c_in, c_out), kernel.numel())
    chunk = _channel_chunk(c_out, taps, size)
    grad_x = grad.new_empty(x.shape) if needs[0] else None
    grad_kernel = grad.new_zeros(kernel.shape) if needs[1] else None
    # Lag k of the reversed correlation sits at index (N - k) mod N.
    lags = (size - torch.arange(taps, device=x.device)) % size
    for first in range(0, batch, rows):
        part_b = slice(first, first + rows)
        grad_spectrum = torch.fft.rfft(grad[:, part_b], n=size, dim=0)  # (F, rows, C_out)
        if needs[1]:
            spectrum = torch.fft.rfft(_rows(x, part_b, level, grad.dtype), n=size, dim=0)
            spectrum = spectrum.transpose(1, 2)  # (F, C_in, rows)
        grad_x_spectrum = None
        for start in range(0, c_out, chunk):
            part = slice(start, start + chunk)
            if needs[0]:
                transfer = _transfer(kernel[part], size).conj().transpose(1, 2)
                if grad_x_spectrum is None:  # (F, rows, C_in)
                    grad_x_spectrum = torch.bmm(grad_spectrum[..., part], transfer)
                elif torch._C._are_functorch_transforms_active():  # no batching rule
                    grad_x_spectrum = grad_x_spectrum + torch.bmm(
                        grad_spectrum[..., part], transfer
                    )
                else:  # accumulates in place
                    grad_x_spectrum.baddbmm_(grad_spectrum[..., part], transfer)
                del transfer  # before the next chunk's is made
            if needs[1]:
                reversed_corr = torch.bmm(spectrum, grad_spectrum[..., part].conj())
                lagged = torch.fft.irfft(reversed_corr, n=size, dim=0).index_select(0, lags)
                del reversed_corr
                grad_kernel[part] += lagged.permute(2, 1, 0)
        if needs[0]:
            grad_x[:, part_b] = torch.fft.irfft(grad_x_spectrum, n=size, dim=0)[:steps]
        # Before the next batch chunk's spectra are made.
        del grad_spectrum, grad_x_spectrum
        spectrum = None
    return grad_x, grad_kernel


def _rows(x: Tensor, rows: slice, level: float | None, dtype: torch.dtype) -> Tensor:
    """(T, rows, C) of the saved input ``x``, rebuilt from bools when it has a ``level``."""
    return x[:, rows] if level is None else unpack_binary(x[:, rows], level, dtype)


def _fft_convolve(x: Tensor, kernel: Tensor, size: int, block: int) -> Tensor:
    """Causal convolution of (T, B, C_in) with a (C_out, C_in, K) kernel, by blocks."""
    steps, batch, _ = x.shape
    if block >= steps:
        return _whole_fft_convolve(x, kernel, size)
    c_out, _, taps = kernel.shape
    blocks = -(-steps // block)
    spectrum = _input_spectrum(x, taps, size, block)  # (F, B * blocks, C_in)
    freqs = spectrum.shape[0]
    y = x.new_empty(steps, batch, c_out)
    chunk = _channel_chunk(c_out, taps, size)
    for start in range(0, c_out, chunk):
        part = slice(start, start + chunk)
        product = torch.bmm(spectrum, _transfer(kernel[part], size))  # (F, B*blocks, chunk)
        width = product.shape[-1]
        product = product.view(freqs, batch, blocks, width).permute(1, 3, 2, 0)
        circular = torch.fft.irfft(product, n=size, dim=-1)  # (B, chunk, blocks, N)
        # Outputs K - 1 .. K - 2 + L of each block are the linear convolution.
        valid = circular[..., taps - 1 : taps - 1 + block].reshape(batch, width, blocks * block)
        y[..., part] = valid[..., :steps].permute(2, 0, 1)
    return y


class FFTDelayedLinear(torch.autograd.Function):
    r"""The FFT path of :func:`delayed_linear` (no bias) with a hand-written backward.

    Saves only its two inputs (no spectra; the input as bools where an enclosing
    :func:`~spatial_layers.spike_dropout.binary_saves` declares it binary, rebuilt by
    batch chunks in the one-block backward) and recomputes what it needs:

    * input gradient: the anti-causal correlation
      :math:`\partial L / \partial x_t = \sum_k \mathrm{kernel}_k^\top g_{t+k}`
      is the causal convolution of the time-reversed gradient with the
      transposed kernel, so it runs the forward algorithm on ``g.flip(0)``
      (in one block, :func:`_whole_fft_backward` instead multiplies by the
      conjugate transfer functions: no flips, one spectrum of the gradient
      shared with the kernel gradient);
    * kernel gradient: :math:`\sum_{t, b} g_t x_{t-k}^\top` for k < K, one
      cross-correlation per block via
      :math:`\mathrm{irfft}(\overline{X_f}^\top G_f)`, summed over batch and
      blocks by the per-frequency product.

    Only real FFTs (torch's own rfft backward uses full complex ones).
    """

    @staticmethod
    def forward(x: Tensor, kernel: Tensor, size: int, block: int) -> Tensor:
        if size < block + kernel.shape[-1] - 1:
            raise ValueError(
                f"transform length {size} is shorter than block + K - 1 = "
                f"{block + kernel.shape[-1] - 1}: the circular convolution would wrap"
            )
        return _fft_convolve(x, kernel, size, block)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, kernel, size, block = inputs
        # Hidden spikes (0 or the dropout scale) are kept as bools, unpacked by chunks.
        ctx.level = binary_level(x)
        ctx.save_for_backward(x if ctx.level is None else x.ne(0), kernel)
        ctx.plan = (size, block)

    @staticmethod
    def vmap(info, in_dims, x, kernel, size, block):
        x_dim, kernel_dim = in_dims[:2]
        if kernel_dim is None:  # one kernel: the vmapped dimension joins the batch
            steps, batch, channels = x.shape[:x_dim] + x.shape[x_dim + 1 :]
            folded = x.movedim(x_dim, 1).reshape(steps, info.batch_size * batch, channels)
            y = FFTDelayedLinear.apply(folded, kernel, size, block)
            return y.view(steps, info.batch_size, batch, -1), 1
        return per_slice(
            lambda a, b: FFTDelayedLinear.apply(a, b, size, block), info, in_dims[:2], x, kernel
        )

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        x, kernel = ctx.saved_tensors
        size, block = ctx.plan
        if block >= x.shape[0]:
            needs = ctx.needs_input_grad[:2]
            return *_whole_fft_backward(x, kernel, grad, size, needs, ctx.level), None, None
        taps = kernel.shape[-1]
        grad_x = grad_kernel = None
        if ctx.needs_input_grad[0]:
            grad_x = _fft_convolve(grad.flip(0), kernel.transpose(0, 1), size, block).flip(0)
        if ctx.needs_input_grad[1]:
            # The float input (rebuilt from bools where saved so) lives only for this call.
            x = _rows(x, slice(None), ctx.level, grad.dtype)
            spectrum = _input_spectrum(x, taps, size, block).mH  # (F, C_in, M)
            del x
            grad_spectrum = _output_spectrum(grad, taps, size, block)  # (F, M, C_out)
            c_out = grad_spectrum.shape[-1]
            grad_kernel = grad.new_empty(kernel.shape)
            chunk = _channel_chunk(c_out, taps, size)
            for start in range(0, c_out, chunk):
                part = slice(start, start + chunk)
                correlation = torch.bmm(spectrum, grad_spectrum[..., part])  # (F, C_in, chunk)
                lags = torch.fft.irfft(correlation.permute(2, 1, 0), n=size, dim=-1)
                grad_kernel[part] = lags[..., :taps]
        return grad_x, grad_kernel, None, None


def _dft_matrices(steps: int, taps: int, size: int, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Real DFT matrices of length ``size`` for the whole-sequence spectral product.

    Made once per shape, dtype and device (:func:`spatial_layers.constants.cached`):
    a dozen launches per layer and step otherwise. Callers only read them.

    Returns:
        forward (2F, T): [Re; Im] spectrum of the input, placed at positions
        K - 1 .. K - 2 + T of the window (the K - 1 zeros of the past first);
        inverse (T, 2F): the real inverse transform (irfft) at those positions;
        taps (2F, K): [Re; Im] spectrum of the kernel taps.
    """
    return cached(("dft", steps, taps, size), like, lambda: _build_dft(steps, taps, size, like))


def _build_dft(steps: int, taps: int, size: int, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`_dft_matrices`, computed in float64 and rounded once to ``like``'s dtype."""
    freqs = size // 2 + 1
    f = torch.arange(freqs, dtype=torch.float64, device=like.device)
    positions = torch.arange(steps, dtype=torch.float64, device=like.device) + taps - 1
    angle = (2 * math.pi / size) * torch.outer(f, positions)  # (F, T)
    forward = torch.cat([angle.cos(), -angle.sin()])
    # irfft: bins 0 and N/2 count once, the others twice (their mirror images).
    weight = torch.full((freqs, 1), 2.0, dtype=torch.float64, device=like.device)
    weight[0] = 1.0
    if size % 2 == 0:
        weight[-1] = 1.0
    inverse = (torch.cat([weight * angle.cos(), -weight * angle.sin()]) / size).T
    tap_angle = (2 * math.pi / size) * torch.outer(
        f, torch.arange(taps, dtype=torch.float64, device=like.device)
    )
    tap_matrix = torch.cat([tap_angle.cos(), -tap_angle.sin()])
    return (
        forward.to(like.dtype),
        inverse.contiguous().to(like.dtype),
        tap_matrix.to(like.dtype),
    )


def _dft_convolve(x: Tensor, kernel: Tensor, size: int) -> Tensor:
    """Whole-sequence spectral product with matrix DFTs (autograd differentiates it).

    With planar spectra X = X_r + i X_i and H = H_r + i H_i per frequency,
    Y = X H is four real batched products; all layouts are contiguous views.
    """
    steps, batch, c_in = x.shape
    c_out, _, taps = kernel.shape
    freqs = size // 2 + 1
    forward, inverse, tap_matrix = _dft_matrices(steps, taps, size, x)
    spectrum = (forward @ x.reshape(steps, batch * c_in)).view(2, freqs, batch, c_in)
    kernel_taps = kernel.permute(2, 1, 0).reshape(taps, c_in * c_out)
    transfer = (tap_matrix @ kernel_taps).view(2, freqs, c_in, c_out)
    (x_re, x_im), (h_re, h_im) = spectrum, transfer
    y_re = torch.baddbmm(torch.bmm(x_re, h_re), x_im, h_im, alpha=-1)
    y_im = torch.baddbmm(torch.bmm(x_re, h_im), x_im, h_re)
    product = torch.cat([y_re, y_im]).view(2 * freqs, batch * c_out)
    return (inverse @ product).view(steps, batch, c_out)


#: The dtypes the spectral paths compute in (others run in float32).
_SPECTRAL_DTYPES = (torch.float32, torch.float64)


def _spectral_delayed_linear(
    x: Tensor, kernel: Tensor, bias: Tensor | None, plan: DelayPlan
) -> Tensor:
    """The ``"fft"`` and ``"dft"`` paths; see the module docstring."""
    # (torch.promote_types is a dispatched op: asked only where the dtypes differ.)
    out_dtype = x.dtype if x.dtype == kernel.dtype else torch.promote_types(x.dtype, kernel.dtype)
    # FFTs need float32 or float64; bf16/fp16 inputs (autocast) run in float32.
    work = out_dtype if out_dtype in _SPECTRAL_DTYPES else torch.float32
    with torch.autocast(x.device.type, enabled=False):
        x, kernel = x.to(work), kernel.to(work)
        if plan.method == "dft":
            y = _dft_convolve(x, kernel, plan.fft_size)
        else:
            y = FFTDelayedLinear.apply(x, kernel, plan.fft_size, plan.block)
        if bias is not None:
            y = y + bias
    return y.to(out_dtype)


class InterpolatedKernel(torch.autograd.Function):
    """Weighted two-tap (``"linear"``) or one-tap (``"round"``) kernel built by scatter.

    Equals ``weight[..., None] * delay_kernel(delays, max_delay, kind, sigma)``
    for those kinds, in value bit for bit and in gradient up to summation
    order, but saves only the (C_out, C_in) weights and delays instead of
    several (C_out, C_in, K) intermediates: memory that grows with K only
    transiently. Gradients, with n = floor(d), a = d - n and G the kernel's
    gradient: ``linear``: dw = (1 - a) G_n + a G_{n+1}; ``round``: dw =
    G_round(d); both: dd = w (G_{n+1} - G_n) (the straight-through gradient of
    the rounded kernel). A tap n + 1 > max_delay is dropped, as in
    :func:`spatial_layers.kernels.linear_kernel`.
    """

    @staticmethod
    def forward(weight: Tensor, delays: Tensor, max_delay: int, rounded: bool) -> Tensor:
        lower, upper, valid, frac = _two_taps(delays, max_delay)
        kernel = weight.new_zeros(*weight.shape, max_delay + 1)
        if rounded:
            nearest = round_delays(delays).long().clamp(0, max_delay)
            kernel.scatter_(-1, nearest[..., None], weight[..., None])
        else:
            kernel.scatter_(-1, lower[..., None], (weight * (1 - frac))[..., None])
            # Adds exactly 0 where the upper tap does not exist (d == max_delay).
            upper_value = torch.where(valid, weight * frac, torch.zeros_like(frac))
            kernel.scatter_add_(-1, upper[..., None], upper_value[..., None])
        return kernel

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        weight, delays, max_delay, rounded = inputs
        ctx.save_for_backward(weight, delays)
        ctx.max_delay, ctx.rounded = max_delay, rounded

    @staticmethod
    def vmap(info, in_dims, weight, delays, max_delay, rounded):
        # Elementwise over the synapses: the vmapped dimension is one more of them.
        weight, delays = batched_first(info, in_dims[:2], weight, delays)
        return InterpolatedKernel.apply(weight, delays, max_delay, rounded), 0

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None, None]:
        weight, delays = ctx.saved_tensors
        lower, upper, valid, frac = _two_taps(delays, ctx.max_delay)
        at_lower = grad.gather(-1, lower[..., None])[..., 0]
        at_upper = grad.gather(-1, upper[..., None])[..., 0] * valid
        if ctx.rounded:
            nearest = round_delays(delays).long().clamp(0, ctx.max_delay)
            grad_weight = grad.gather(-1, nearest[..., None])[..., 0]
        else:
            grad_weight = at_lower * (1 - frac) + at_upper * frac
        return grad_weight, weight * (at_upper - at_lower), None, None


def _two_taps(delays: Tensor, max_delay: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    lower_float = torch.floor(delays)
    frac = delays - lower_float
    lower = lower_float.long().clamp(0, max_delay)
    valid = lower + 1 <= max_delay
    upper = (lower + 1).clamp(max=max_delay)
    return lower, upper, valid, frac


def interpolated_kernel(
    weight: Tensor, delays: Tensor, max_delay: int, kind: Literal["linear", "round"]
) -> Tensor:
    """(C_out, C_in) weights and delays in steps -> (C_out, C_in, max_delay + 1) kernel.

    The ``linear`` or ``round`` kernel of :mod:`spatial_layers.kernels` times
    the weights, built without K-sized autograd intermediates
    (:class:`InterpolatedKernel`).

    Example:
        >>> interpolated_kernel(torch.tensor([[2.0]]), torch.tensor([[1.25]]), 3, "linear")
        tensor([[[0.0000, 1.5000, 0.5000, 0.0000]]])
    """
    if kind not in ("linear", "round"):
        raise ValueError(f"kind must be 'linear' or 'round', got {kind!r}")
    return InterpolatedKernel.apply(weight, delays, max_delay, kind == "round")


def initial_delay_state(x_t: Tensor, taps: int) -> DelayState:
    """Zero history for a batch shaped like ``x_t`` (B, C_in)."""
    return DelayState(x_t.new_zeros(*x_t.shape, taps))


def delayed_step(
    x_t: Tensor, kernel: Tensor, state: DelayState | None = None, bias: Tensor | None = None
) -> tuple[Tensor, DelayState]:
    """One time step of :func:`delayed_linear`.

    Args:
        x_t: (B, C_in) input at step t.
        kernel: (C_out, C_in, K) effective kernel.
        state: history up to t - 1, or None for an all-zero past.
        bias: optional (C_out,).

    Returns:
        y_t of shape (B, C_out) and the history up to t.
    """
    taps = kernel.shape[-1]
    if state is None:
        state = initial_delay_state(x_t, taps)
    history = torch.cat([x_t[..., None], state.history[..., : taps - 1]], dim=-1)
    y_t = F.linear(history.flatten(1), kernel.flatten(1), bias)
    return y_t, DelayState(history)
