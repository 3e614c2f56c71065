"""Delay -> temporal kernel, DCLS style.

Each synapse gets a kernel over taps k = 0 .. max_delay (tap k means "k steps
ago") whose mass sits at the synapse's real-valued delay d. Three shapes:

* ``gauss``: a Gaussian of width ``sigma`` centred on d, normalised to sum 1
  over the taps (DCLS's ``gauss`` construction).
* ``linear``: two taps, (1 - frac) at floor(d) and frac at floor(d) + 1
  (DCLS's ``v0`` construction); exact for any d, gradient through ``frac``.
* ``round``: one tap at round(d) (half up), with the ``linear`` kernel's
  gradient passed straight through; the evaluation / hardware kernel.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from spatial_layers.constants import cached
from spatial_layers.vmap_rules import batched_first

KernelKind = Literal["gauss", "linear", "round"]
KERNEL_KINDS: tuple[str, ...] = ("gauss", "linear", "round")

#: Added to the Gaussian's sum before normalising, as DCLS does, so a kernel
#: whose mass lies far outside the taps never divides by zero.
GAUSS_NORM_EPS = 1e-7

#: Taps on each side of a delay that the normaliser of dropped taps sums term by term
#: (the window is taps floor(d) - 9 .. floor(d) + 10); see :class:`GaussianMass`.
MASS_WINDOW = 10
#: Terms of the Euler-Maclaurin corrections (derivatives of orders 1, 3, ..., 19).
EULER_MACLAURIN_TERMS = 10
#: |(x - d) / sigma| beyond which a correction term is taken as 0: there
#: exp(-u^2 / 2) < 3e-43, and the polynomials of degree <= 21 stay finite in float32.
_CUTOFF = 14.0


#: Narrowest default Gaussian width, in steps (a layer with max_delay 0 or 1).
MIN_DEFAULT_SIGMA = 0.5


def default_sigma(max_delay: int) -> float:
    """The Gaussian width a layer starts with: ``max(max_delay / 2, 0.5)`` steps.

    The wide start DCLS-delays anneals down from (its kernels first spread over half
    the delay range), used by :class:`~spatial_layers.SpatialDelay` and by the sigma
    schedule of the training app.

    Example:
        >>> default_sigma(25), default_sigma(0)
        (12.5, 0.5)
    """
    return max(max_delay / 2, MIN_DEFAULT_SIGMA)


def round_delays(delays: Tensor) -> Tensor:
    """Rounds delays to whole steps, halves upwards (never truncates).

    Used by the ``round`` kernel and by every export path, so that all integer
    delays in the package agree. ``floor(d + 0.5)`` would be wrong just below a
    half: in float32, 0.49999997 + 0.5 rounds to 1.0. ``d - floor(d)`` is exact,
    so comparing it with 0.5 is not.

    Example:
        >>> round_delays(torch.tensor([2.49, 2.5, 2.51, 0.49999997]))
        tensor([2., 3., 3., 0.])
    """
    lower = torch.floor(delays)
    return lower + (delays - lower >= 0.5).to(delays.dtype)


def kept_taps(max_delay: int, taps: int | None) -> int:
    """Taps a kernel builder returns: ``max_delay + 1``, or the first ``taps`` of them.

    A sequence of T steps can use taps 0 .. T - 1 only (tap k meets the input of
    k steps ago), so its forward asks for ``taps=T``.
    """
    if taps is None:
        return max_delay + 1
    if isinstance(taps, bool) or not isinstance(taps, int) or taps < 0:
        raise ValueError(f"taps must be an int >= 0 or None, got {taps!r}")
    return min(taps, max_delay + 1)


def _tap_range(first: int, stop: int, like: Tensor) -> Tensor:
    """Taps first .. stop - 1 as ``like``'s dtype (made once per shape, dtype, device)."""
    return cached(
        ("taps", first, stop),
        like,
        lambda: torch.arange(first, stop, device=like.device, dtype=like.dtype),
    )


def _along_taps(sigma: Tensor) -> Tensor:
    """``sigma`` (0-d, or broadcastable to the delays) broadcastable to (..., taps) tensors."""
    return sigma if sigma.dim() == 0 else sigma[..., None]


def _gauss_offsets(delays: Tensor, sigma: float | Tensor, first: int, stop: int) -> Tensor:
    """(..., stop - first) distances (k - d) / sigma of taps first .. stop - 1 from each delay."""
    if isinstance(sigma, Tensor):
        sigma = _along_taps(sigma)
    return (_tap_range(first, stop, delays) - delays[..., None]) / sigma


def _gauss_bump(delays: Tensor, sigma: float | Tensor, first: int, stop: int) -> Tensor:
    """(..., stop - first) unnormalised Gaussian of each delay at taps first .. stop - 1."""
    return torch.exp(-0.5 * _gauss_offsets(delays, sigma, first, stop).pow(2))


def _reduce_to(grad: Tensor, like: Tensor) -> Tensor:
    """``grad`` summed down to ``like``'s (broadcast) shape."""
    if grad.shape == like.shape:
        return grad
    return grad.sum() if like.dim() == 0 else grad.sum_to_size(like.shape)


# --- the mass of the dropped taps ---------------------------------------------------------


def _hermite_coefficients(degree: int) -> list[list[int]]:
    """Power-basis coefficients of the probabilists' Hermite polynomials He_0 .. He_degree
    (exact integers): He_{m+1}(u) = u He_m(u) - m He_{m-1}(u)."""
    polys = [[1], [0, 1]]
    for m in range(1, degree):
        shifted = [0, *polys[m]]
        lower = polys[m - 1] + [0] * (len(shifted) - len(polys[m - 1]))
        polys.append([a - m * b for a, b in zip(shifted, lower, strict=True)])
    return polys[: degree + 1]


def _euler_maclaurin_tables(terms: int) -> tuple[list[float], list[list[float]], ...]:
    """The constants of :class:`GaussianMass`'s corrections, exact until the final rounding.

    Returns ``(c, odd, even, scale)``: the midpoint Euler-Maclaurin weights
    ``c_j = B_2j(1/2) / (2j)!`` (j = 1 .. terms), and the power coefficients (in v = u^2)
    of the polynomials whose values at the interval ends give the corrections to the
    mass (``odd[j][i]``: u^(2i+1) in He_(2j-1)), its delay derivative (``even[j][i]``:
    u^(2i) in He_2j) and its sigma derivative (``scale[j][i]``: u^(2i+1) in
    (2j - 1) He_(2j-1) - u He_2j).
    """
    bernoulli = [Fraction(1)]  # B_0, B_1, ... by the standard recurrence
    for n in range(1, 2 * terms + 1):
        bernoulli.append(-sum(math.comb(n + 1, k) * bernoulli[k] for k in range(n)) / (n + 1))
    c = [
        float(-(1 - Fraction(2) ** (1 - 2 * j)) * bernoulli[2 * j] / math.factorial(2 * j))
        for j in range(1, terms + 1)
    ]
    he = _hermite_coefficients(2 * terms)

    def padded(poly: list[int], parity: int, size: int) -> list[float]:
        return [
            float(poly[2 * i + parity]) if 2 * i + parity < len(poly) else 0.0 for i in range(size)
        ]

    odd = [padded(he[2 * j - 1], 1, terms) for j in range(1, terms + 1)]
    even = [padded(he[2 * j], 0, terms + 1) for j in range(1, terms + 1)]
    scale = []
    for j in range(1, terms + 1):
        combined = [(2 * j - 1) * a for a in he[2 * j - 1]] + [0, 0]
        for i, a in enumerate(he[2 * j]):  # - u He_2j
            combined[i + 1] -= a
        scale.append(padded(combined, 1, terms + 1))
    return c, odd, even, scale


_EM_C, _EM_ODD, _EM_EVEN, _EM_SCALE = _euler_maclaurin_tables(EULER_MACLAURIN_TERMS)


def _em_constants(like: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(c_j, exponents 1 - 2j, odd, even, scale) as tensors like ``like`` (cached)."""

    def build() -> tuple[Tensor, ...]:
        def t(values) -> Tensor:
            return torch.tensor(values, dtype=like.dtype, device=like.device)

        exponents = [1.0 - 2 * j for j in range(1, EULER_MACLAURIN_TERMS + 1)]
        return t(_EM_C), t(exponents), t(_EM_ODD), t(_EM_EVEN), t(_EM_SCALE)

    return cached(("euler-maclaurin", EULER_MACLAURIN_TERMS), like, build)


def _unit(like: Tensor, size: int) -> Tensor:
    """(1, 0, ..., 0) of length ``size``: adds 1 to a polynomial's constant coefficient."""

    def build() -> Tensor:
        unit = torch.zeros(size, dtype=like.dtype, device=like.device)
        unit[0] = 1.0
        return unit

    return cached(("unit", size), like, build)


def _horner(coefficients: Tensor, v: Tensor) -> Tensor:
    """sum_i coefficients[..., i] v^i (coefficients shaped like sigma + (n,), v any shape
    that sigma broadcasts to)."""
    acc = torch.addcmul(coefficients[..., -2], coefficients[..., -1], v)
    for i in range(coefficients.shape[-1] - 3, -1, -1):
        acc = torch.addcmul(coefficients[..., i], acc, v)
    return acc


class _Runs(NamedTuple):
    """What the mass of dropped taps is made of, for one call (see :class:`GaussianMass`).

    Attributes:
        offsets: (..., 2W) (k - d) / sigma of the window's taps.
        bump: (..., 2W) their Gaussian, 0 outside the dropped taps.
        u: (4, ...) (x - d) / sigma at the ends of the two runs outside the window
            (lower run: rows 0, 1; upper run: rows 2, 3; an empty run has equal ends),
            clamped to the cutoff.
        near: (4, ...) |u| <= the cutoff (elsewhere a correction term is 0).
        integral: (...) the Gaussian's integral over both runs.
    """

    offsets: Tensor
    bump: Tensor
    u: Tensor
    near: Tensor
    integral: Tensor


def _runs(delays: Tensor, sigma: Tensor, first: int, stop: int) -> _Runs:
    lower = torch.floor(delays)
    window = cached(
        ("mass-window", MASS_WINDOW),
        delays,
        lambda: torch.arange(
            1 - MASS_WINDOW, MASS_WINDOW + 1, dtype=delays.dtype, device=delays.device
        ),
    )
    taps = lower[..., None] + window
    inside = (taps >= first) & (taps < stop)
    offsets = (taps - delays[..., None]) / _along_taps(sigma)
    bump = torch.where(inside, torch.exp(-0.5 * offsets.pow(2)), 0.0)
    # Ends of the runs of dropped taps below and above the window, at half-taps,
    # clamped into [first - 1/2, stop - 1/2] (a run that does not exist has equal ends).
    shifts = cached(
        ("mass-run-ends", MASS_WINDOW, delays.dim()),
        delays,
        lambda: torch.tensor(
            [-math.inf, 0.5 - MASS_WINDOW, MASS_WINDOW + 0.5, math.inf],
            dtype=delays.dtype,
            device=delays.device,
        ).view(4, *[1] * delays.dim()),
    )
    ends = (lower + shifts).clamp(first - 0.5, stop - 0.5)
    u = (ends - delays) / sigma
    e = torch.erf(u * _SQRT_HALF)
    integral = (_SQRT_HALF_PI * sigma) * ((e[1] - e[0]) + (e[3] - e[2]))
    return _Runs(offsets, bump, u.clamp(-_CUTOFF, _CUTOFF), u.abs() <= _CUTOFF, integral)


_SQRT_HALF = math.sqrt(0.5)
_SQRT_HALF_PI = math.sqrt(math.pi / 2)


def _polynomial_weights(sigma: Tensor) -> tuple[Tensor, Tensor]:
    """(w, w / sigma) with w_j = c_j sigma^(1 - 2j), shaped like sigma + (terms,).

    Sigma is floored at ``(MASS_WINDOW - 1/2) / _CUTOFF`` here: below it every end of a
    non-empty run lies beyond the cutoff (its terms are 0), and the weights stay finite.
    """
    c, exponents, *_ = _em_constants(sigma)
    floored = sigma.clamp(min=(MASS_WINDOW - 0.5) / _CUTOFF)[..., None]
    w = c * floored.pow(exponents)
    return w, w / floored


def _at_ends(runs: _Runs, values: Tensor) -> Tensor:
    """sum over both runs of values(upper end) - values(lower end); 0 beyond the cutoff."""
    values = torch.where(runs.near, values, 0.0)
    return (values[1] - values[0]) + (values[3] - values[2])


class _Mass(NamedTuple):
    """The dropped taps' mass M and, where asked for, dM/dd and dM/dsigma (shaped like d)."""

    value: Tensor
    by_delay: Tensor | None = None
    by_sigma: Tensor | None = None


def _dropped_mass(
    delays: Tensor, sigma: Tensor, first: int, stop: int, *, grads: bool = False
) -> _Mass:
    """sum_{k = first}^{stop - 1} exp(-(k - d)^2 / 2 sigma^2), and its derivatives when
    ``grads`` (from the same window and run ends), see :class:`GaussianMass`."""
    if stop - first <= 2 * MASS_WINDOW:
        offsets = _gauss_offsets(delays, sigma, first, stop)
        bump = torch.exp(-0.5 * offsets.pow(2))
        if not grads:
            return _Mass(bump.sum(-1))
        weighted = bump * offsets
        by_sigma = (weighted * offsets).sum(-1) / sigma
        return _Mass(bump.sum(-1), weighted.sum(-1) / sigma, by_sigma)
    runs = _runs(delays, sigma, first, stop)
    _, _, odd, even, scale = _em_constants(delays)
    w, w_over_sigma = _polynomial_weights(sigma)
    u = runs.u
    v = u.pow(2)
    phi = torch.exp(-0.5 * v)
    # C(x) = sum_j c_j g^(2j-1)(x) = -phi(u) u sum_i a_i u^2i.
    corrections = _at_ends(runs, phi * u * _horner(w @ odd, v))
    value = runs.bump.sum(-1) + runs.integral - corrections
    if not grads:
        return _Mass(value)
    unit = _unit(delays, even.shape[-1])
    # dM/dd = -(D(B) - D(A)) per run, D = phi (1 + sum_j c_j sigma^-2j He_2j).
    ends_d = _at_ends(runs, phi * _horner(w_over_sigma @ even + unit, v))
    # dM/dsigma = I / sigma + (S(B) - S(A)) per run,
    # S = phi u (-1 + sum_j c_j sigma^-2j ((2j - 1) He_(2j-1) / u - He_2j)).
    ends_s = _at_ends(runs, phi * u * _horner(w_over_sigma @ scale - unit, v))
    weighted = runs.bump * runs.offsets
    by_delay = weighted.sum(-1) / sigma - ends_d
    by_sigma = (weighted * runs.offsets).sum(-1) / sigma + runs.integral / sigma + ends_s
    return _Mass(value, by_delay, by_sigma)


class GaussianMass(torch.autograd.Function):
    r"""Mass of each delay's unnormalised Gaussian on taps ``first .. stop - 1``.

    .. math::
        M(d, \sigma) = \sum_{k=a}^{b} g(k), \quad g(x) = e^{-(x - d)^2 / 2\sigma^2}, \qquad
        \frac{\partial M}{\partial d} = \sum_k g(k) \frac{k - d}{\sigma^2}, \quad
        \frac{\partial M}{\partial \sigma} = \sum_k g(k) \frac{(k - d)^2}{\sigma^3}

    with a = ``first``, b = ``stop - 1``: the normaliser of the taps a kernel does not
    keep. Its cost does not grow with b - a. Up to 2W = 20 taps
    (:data:`MASS_WINDOW` = W) are summed term by term; more are split into

    * the *window*, taps :math:`\lfloor d \rfloor - W + 1 .. \lfloor d \rfloor + W`
      that lie in [a, b], summed term by term (a fixed-width gather per synapse);
    * at most two runs p .. r of consecutive taps outside the window, one on each side.
      Every point x of :math:`[p - \tfrac12, r + \tfrac12]` is at least
      :math:`W - \tfrac12` from d. Each run is summed by the midpoint Euler-Maclaurin
      formula with q = :data:`EULER_MACLAURIN_TERMS` terms,

      .. math::
          \sum_{k=p}^{r} g(k) = \int_{p-1/2}^{r+1/2} g(x)\,dx
            + \sum_{j=1}^{q} \frac{B_{2j}(\tfrac12)}{(2j)!}
              \Big[g^{(2j-1)}\Big]_{p-1/2}^{r+1/2} + R,

      the integral by ``erf``, the derivatives as
      :math:`g^{(m)}(x) = (-1)^m \sigma^{-m} \mathrm{He}_m(u) e^{-u^2/2}`,
      :math:`u = (x - d) / \sigma` (Hermite polynomials, evaluated by Horner's rule).
      The gradients are the same formulas differentiated (the integral's derivatives
      are its integrand at the ends); they are Euler-Maclaurin sums of
      :math:`\partial g / \partial d` and :math:`\partial g / \partial \sigma` with the
      same kind of remainder.

    Error bound. With the periodic Bernoulli function
    :math:`|\tilde B_{2q}(x)| / (2q)! \le 2\zeta(2q) / (2\pi)^{2q}`, the remainder of
    both runs together is

    .. math::
        |R| \le \frac{2\zeta(2q)}{(2\pi)^{2q}} \int_{|x - d| \ge W - 1/2} |g^{(2q)}(x)|\,dx
            = \frac{2\zeta(2q)}{(2\pi)^{2q}}\, \sigma^{1-2q}
              \int_{|u| \ge (W - 1/2)/\sigma} |\mathrm{He}_{2q}(u)|\, e^{-u^2/2}\, du,

    small for small sigma (the runs lie in the Gaussian's far tail) and for large sigma
    (:math:`\sigma^{1-2q}`). For W = 10, q = 10 its maximum over all sigma > 0
    (quadrature of the integral, at sigma ~ 1.6) is below :math:`1.8 \cdot 10^{-15}`
    times the full normaliser :math:`\sum_{k=0}^{d_{max}} g(k)`, which is at least
    :math:`e^{-1/8\sigma^2}` for a delay in [0, d_max] (its nearest tap is within half
    a step); the same bound for the delay derivative is :math:`5.2 \cdot 10^{-15}`, for
    the sigma derivative :math:`2.5 \cdot 10^{-14}` (in units of the normaliser per
    step and per unit of sigma). Terms at :math:`|u| > 14` are dropped: there
    :math:`e^{-u^2/2} < 3 \cdot 10^{-43}`, times polynomials that stay below
    :math:`10^{10}`. All of it far below float32 rounding (:math:`6 \cdot 10^{-8}`) and
    near float64's; the tests compare with the exact sum in float64 over a grid of
    (d, sigma, first, stop) that crosses every switch-over.

    Saves only ``delays`` and ``sigma`` (sigma: 0-d, or broadcastable to the delays).
    """

    @staticmethod
    def forward(delays: Tensor, sigma: Tensor, first: int, stop: int) -> Tensor:
        return _dropped_mass(delays, sigma, first, stop).value

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        delays, sigma, first, stop = inputs
        ctx.save_for_backward(delays, sigma)
        ctx.taps = (first, stop)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        delays, sigma = ctx.saved_tensors
        _, by_delay, by_sigma = _dropped_mass(delays, sigma, *ctx.taps, grads=True)
        grad_delays = grad * by_delay if ctx.needs_input_grad[0] else None
        grad_sigma = _reduce_to(grad * by_sigma, sigma) if ctx.needs_input_grad[1] else None
        return grad_delays, grad_sigma, None, None

    @staticmethod
    def vmap(info, in_dims, delays, sigma, first, stop):
        delays, sigma = _vmapped_pair(info, in_dims[0], in_dims[1], delays, sigma)
        return GaussianMass.apply(delays, sigma, first, stop), 0


def _vmapped_pair(info, delays_dim, sigma_dim, delays: Tensor, sigma: Tensor):
    """Delays with the vmapped dimension first, and sigma broadcastable to them."""
    logical = delays.dim() - (delays_dim is not None)
    (delays,) = batched_first(info, [delays_dim], delays)
    if sigma_dim is not None:
        sigma = sigma.movedim(sigma_dim, 0)
        sigma = sigma.reshape(sigma.shape[0], *[1] * (logical - sigma.dim() + 1), *sigma.shape[1:])
    return delays, sigma


class GaussianKernel(torch.autograd.Function):
    r"""The normalised Gaussian kernel (times the weights, when given) as one autograd node.

    Forward: the operations of the composite form (:func:`gaussian_kernel`), the same
    bits. Backward by hand, with :math:`K_k = w\, s_k`, :math:`s_k = b_k / N`,
    :math:`b_k = e^{-o_k^2/2}`, :math:`o_k = (k - d)/\sigma`,
    :math:`N = \sum_{kept} b_k + M + \epsilon` (M: :class:`GaussianMass`) and the
    incoming gradient G:

    .. math::
        \frac{\partial L}{\partial w} = \sum_k G_k s_k, \quad
        \frac{\partial L}{\partial d} = w \Big[\frac{\sum_k G_k s_k o_k
            - \frac{\partial L}{\partial w} \sum_k s_k o_k}{\sigma}
            - \frac{\partial L}{\partial w} \frac{\partial_d M}{N}\Big], \quad
        \frac{\partial L}{\partial \sigma} = \sum w \Big[\frac{\sum_k G_k s_k o_k^2
            - \frac{\partial L}{\partial w} \sum_k s_k o_k^2}{\sigma}
            - \frac{\partial L}{\partial w} \frac{\partial_\sigma M}{N}\Big]

    Saves the (..., K) normalised shape s and (..., 1) N: one kernel-sized tensor where
    autograd through the composite keeps four.
    """

    @staticmethod
    def forward(
        delays: Tensor,
        sigma: Tensor,
        weight: Tensor | None,
        max_delay: int,
        kept: int,
        grads: bool,
    ) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None, Tensor | None]:
        bump = _gauss_bump(delays, sigma, 0, kept)
        norm = bump.sum(-1, keepdim=True)
        mass = _Mass(None)
        if kept <= max_delay:
            # The derivatives share the mass's window and run ends: made here when a
            # backward pass will want them (two (...)-shaped tensors kept), not twice.
            mass = _dropped_mass(delays, sigma, kept, max_delay + 1, grads=grads)
            norm = norm + mass.value[..., None]
        denominator = norm + GAUSS_NORM_EPS
        shape = bump / denominator
        if weight is None:  # the kernel is the shape (not returned twice)
            return shape, None, denominator, mass.by_delay, mass.by_sigma
        return weight[..., None] * shape, shape, denominator, mass.by_delay, mass.by_sigma

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        delays, sigma, weight, max_delay, kept, _ = inputs
        kernel, shape, denominator, mass_d, mass_s = output
        shape = kernel if shape is None else shape
        ctx.save_for_backward(delays, sigma, weight, shape, denominator, mass_d, mass_s)
        ctx.taps = (max_delay, kept)
        extra = [t for t in output[1:] if t is not None and t is not kernel]
        ctx.mark_non_differentiable(*extra)
        ctx.set_materialize_grads(False)  # no zeros for the non-differentiable outputs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor | None, *_non_differentiable):
        delays, sigma, weight, shape, denominator, mass_d, mass_s = ctx.saved_tensors
        max_delay, kept = ctx.taps
        needs_delays, needs_sigma, needs_weight = ctx.needs_input_grad[:3]
        nothing = (None,) * 6
        if grad is None:  # the kernel got no gradient (only the other outputs were used)
            return nothing
        projected = grad * shape
        by_weight = projected.sum(-1)  # sum_k G_k s_k
        grad_weight = by_weight if needs_weight else None
        if not (needs_delays or needs_sigma):
            return None, None, grad_weight, *nothing[3:]
        offsets = _gauss_offsets(delays, sigma, 0, kept)
        dropped = kept <= max_delay
        if dropped and mass_d is None:  # not made in the forward pass
            _, mass_d, mass_s = _dropped_mass(delays, sigma, kept, max_delay + 1, grads=True)
        if dropped:
            # The normaliser's dependence on the dropped taps, per unit of dL/dw.
            per_weight = by_weight / denominator[..., 0]

        def chain(moment: Tensor, dropped_mass: Tensor | None) -> Tensor:
            """dL/d(delay) (moment: the offsets) or dL/d(sigma) (their squares), per synapse."""
            slope = (projected * moment).sum(-1) - by_weight * (shape * moment).sum(-1)
            result = slope / sigma
            if dropped:
                result = result - per_weight * dropped_mass
            return result if weight is None else result * weight

        grad_delays = chain(offsets, mass_d) if needs_delays else None
        grad_sigma = _reduce_to(chain(offsets.pow(2), mass_s), sigma) if needs_sigma else None
        return grad_delays, grad_sigma, grad_weight, *nothing[3:]

    @staticmethod
    def vmap(info, in_dims, delays, sigma, weight, max_delay, kept, grads):
        delays_dim, sigma_dim, weight_dim = in_dims[:3]
        delays, sigma = _vmapped_pair(info, delays_dim, sigma_dim, delays, sigma)
        (weight,) = batched_first(info, [weight_dim], weight)
        outputs = GaussianKernel.apply(delays, sigma, weight, max_delay, kept, grads)
        return outputs, tuple(None if out is None else 0 for out in outputs)


def gaussian_kernel(
    delays: Tensor,
    max_delay: int,
    sigma: float | Tensor,
    *,
    taps: int | None = None,
    weight: Tensor | None = None,
) -> Tensor:
    r"""Normalised Gaussian kernel centred on each delay.

    .. math::
        K_{k} = \frac{e^{-(k - d)^2 / 2\sigma^2}}
                     {\sum_{k'=0}^{d_{max}} e^{-(k' - d)^2 / 2\sigma^2} + \epsilon}

    Args:
        delays: delays in steps, shape (...).
        max_delay: last tap index.
        sigma: width in steps (> 0), a number or a 0-d tensor (or one broadcastable to
            the delays).
        taps: keep only the first ``taps`` taps (:func:`kept_taps`). They have the
            full kernel's values: the normaliser still sums every tap, the dropped
            ones by :class:`GaussianMass` (at a cost that does not grow with them).
        weight: multiplies the kernel by ``weight[..., None]`` (shape of the delays)
            in the same autograd node (:class:`GaussianKernel`).

    Returns:
        Kernel of shape (..., min(taps, max_delay + 1)).
    """
    kept = kept_taps(max_delay, taps)
    width = sigma if isinstance(sigma, Tensor) else delays.new_full((), sigma)
    grads = torch.is_grad_enabled() and (delays.requires_grad or width.requires_grad)
    return GaussianKernel.apply(delays, width, weight, max_delay, kept, grads)[0]


def linear_kernel(delays: Tensor, max_delay: int, *, taps: int | None = None) -> Tensor:
    """Two-tap linear interpolation between floor(d) and floor(d) + 1.

    Args:
        delays: delays in steps within [0, max_delay], shape (...).
        max_delay: last tap index.
        taps: keep only the first ``taps`` taps (:func:`kept_taps`).

    Returns:
        Kernel of shape (..., min(taps, max_delay + 1)); a tap past the last one
        (past ``max_delay``: only reached with weight 0, at d == max_delay) is dropped.
    """
    lower = torch.floor(delays).detach()
    frac = (delays - lower)[..., None]
    tap_index = _tap_range(0, kept_taps(max_delay, taps), delays)
    at_lower = (tap_index == lower[..., None]).to(delays.dtype)
    at_upper = (tap_index == lower[..., None] + 1).to(delays.dtype)
    return at_lower * (1 - frac) + at_upper * frac


def rounded_kernel(delays: Tensor, max_delay: int, *, taps: int | None = None) -> Tensor:
    """One tap at round(d); gradient of :func:`linear_kernel` (straight-through).

    Arguments and shape as :func:`linear_kernel`'s; one-hot in the forward pass.
    """
    soft = linear_kernel(delays, max_delay, taps=taps)
    tap_index = _tap_range(0, kept_taps(max_delay, taps), delays)
    hard = (tap_index == round_delays(delays.detach())[..., None]).to(delays.dtype)
    return soft + (hard - soft).detach()


def delay_kernel(
    delays: Tensor,
    max_delay: int,
    kind: KernelKind,
    sigma: float | Tensor,
    *,
    taps: int | None = None,
) -> Tensor:
    """Dispatches to the kernel builder named by ``kind`` (see module doc).

    Returns:
        (..., min(taps, max_delay + 1)) kernel; ``taps=None`` keeps all max_delay + 1.
    """
    if kind == "gauss":
        return gaussian_kernel(delays, max_delay, sigma, taps=taps)
    if kind == "linear":
        return linear_kernel(delays, max_delay, taps=taps)
    if kind == "round":
        return rounded_kernel(delays, max_delay, taps=taps)
    raise ValueError(f"kernel must be one of {KERNEL_KINDS}, got {kind!r}")
