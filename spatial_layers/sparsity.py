"""Connectivity masks, Dale signs and wiring cost: the helpers rewiring callbacks use.

Every :class:`~spatial_layers.delay.SpatialDelay` holds a boolean ``mask``
(C_out, C_in) and an optional ``sign`` (C_in,). The functions here are pure
torch: they draw masks with an exact number of active synapses, pick synapses
to drop or regrow (top-k selections, :func:`signed_growth` for sign-constrained
synapses), record dense gradients of masked layers (:class:`DenseGradients`),
assign Dale signs, and compute the wiring cost. The Lightning callbacks in
``lightning_modules.callbacks`` (DEEP R, RigL, Dale; what DEEP R and RigL share
is in ``lightning_modules.callbacks.rewiring``) only decide *when* to call them.

Conventions kept by every function that edits a layer:

* the number of active synapses is exactly ``round(density * C_out * C_in)``
  (with densities per layer from :func:`layer_active_counts`);
* dormant synapses hold a weight of exactly 0, so opening the mask (to read
  dense gradients) does not change what the layer computes, and a regrown
  synapse starts at 0;
* randomness comes from an explicit ``torch.Generator`` (see
  :func:`step_generator`), so that every DDP rank draws the same numbers.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from spatial_layers.delay import SpatialDelay
from spatial_layers.geometry import pairwise_distance

__all__ = [
    "DenseGradients",
    "RewiringEvent",
    "active_count",
    "assign_dale_signs",
    "check_density",
    "check_distribution",
    "check_fraction",
    "check_sparsity",
    "cosine_drop_fraction",
    "initialise_sparsity",
    "layer_active_counts",
    "random_mask",
    "random_select",
    "rewire",
    "set_density",
    "signed_growth",
    "spatial_delay_layers",
    "step_generator",
    "topk_select",
    "wiring_cost",
    "wiring_distance",
    "zero_optimizer_state",
]


SparsityDistribution = Literal["uniform", "erk"]
SPARSITY_DISTRIBUTIONS: tuple[str, ...] = ("uniform", "erk")

# --------------------------------------------------------------------------- validation


def _check_number(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_density(density: float) -> float:
    """Returns ``density`` as a float if it lies in (0, 1], else raises ValueError."""
    value = _check_number("density", density)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"density must be in (0, 1] (fraction of active synapses), got {density}")
    return value


def check_sparsity(sparsity: float) -> float:
    """Returns ``sparsity`` as a float if it lies in [0, 1), else raises ValueError."""
    value = _check_number("sparsity", sparsity)
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"sparsity must be in [0, 1) (fraction of absent synapses; 1 would remove "
            f"every synapse), got {sparsity}"
        )
    return value


def check_distribution(distribution: str) -> SparsityDistribution:
    """Returns ``distribution`` if it is one of :data:`SPARSITY_DISTRIBUTIONS`, else raises."""
    if distribution not in SPARSITY_DISTRIBUTIONS:
        raise ValueError(
            f"distribution must be one of {SPARSITY_DISTRIBUTIONS}, got {distribution!r}"
        )
    return distribution


def check_fraction(name: str, fraction: float) -> float:
    """Returns ``fraction`` as a float if it lies in [0, 1], else raises ValueError."""
    value = _check_number(name, fraction)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {fraction}")
    return value


# --------------------------------------------------------------------------- finding layers


def spatial_delay_layers(
    module: nn.Module, patterns: Sequence[str] | None = None
) -> list[tuple[str, SpatialDelay]]:
    """The ``SpatialDelay`` submodules of ``module`` with their qualified names.

    Args:
        module: any module (a network, a LightningModule).
        patterns: optional ``fnmatch`` patterns on the qualified names (e.g.
            ``["net.layers.*"]``); a layer is kept if any pattern matches.
            None keeps every layer.

    Returns:
        ``(name, layer)`` pairs in ``named_modules`` order (each layer once).
    """
    found = [(name, m) for name, m in module.named_modules() if isinstance(m, SpatialDelay)]
    if patterns is None:
        return found
    return [(n, m) for n, m in found if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def step_generator(seed: int, *keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator seeded from ``seed`` and integer ``keys`` (step, layer index, ...).

    Every DDP rank that calls this with the same arguments draws the same
    numbers, so rewiring decisions agree without any communication.
    """
    mixed = int(seed) & 0xFFFFFFFF
    for key in keys:  # a simple, stable integer mix (no Python hash randomisation)
        mixed = (mixed * 1_000_003 + int(key) + 0x9E3779B9) % (2**63 - 1)
    generator = torch.Generator(device=torch.device(device))
    generator.manual_seed(mixed)
    return generator


# --------------------------------------------------------------------------- masks


def active_count(numel: int, density: float) -> int:
    """Number of active synapses for ``density``: ``round(density * numel)``, at least 1."""
    check_density(density)
    return max(1, round(density * numel))


def layer_active_counts(
    shapes: Sequence[Sequence[int]],
    sparsity: float,
    distribution: SparsityDistribution = "uniform",
) -> list[int]:
    r"""Active synapses per layer for a sparsity target.

    - ``"uniform"``: every layer keeps :func:`active_count` ``(numel, 1 - sparsity)``.
    - ``"erk"``: Erdős–Rényi (Mocanu et al. 2018; RigL's "ERK" without kernel
      dimensions): the density of a (C_out, C_in) layer is proportional to
      :math:`(C_{in} + C_{out}) / (C_{in} C_{out})`, scaled so that all layers
      together keep exactly ``round((1 - sparsity) * total)`` synapses.
      Small layers (a 5-input first layer, a 3-class readout) stay denser and
      large hidden-to-hidden layers take most of the sparsity; a layer whose
      density would exceed 1 is kept dense and the others are rescaled.
      Integer counts by largest remainder, so the total is exact.

    Args:
        shapes: (C_out, C_in) of every layer.
        sparsity: fraction of absent synapses, in [0, 1) (per layer for
            ``"uniform"``, over all layers for ``"erk"``).
        distribution: ``"uniform"`` or ``"erk"``.

    Returns:
        Number of active synapses per layer (each >= 1 and <= C_out * C_in).

    Example:
        >>> layer_active_counts([(128, 5), (128, 128), (3, 128)], 0.9, "erk")
        [464, 893, 384]
    """
    sparsity = check_sparsity(sparsity)
    numels = [math.prod(shape) for shape in shapes]
    if check_distribution(distribution) == "uniform":
        return [active_count(numel, 1.0 - sparsity) for numel in numels]
    if any(len(shape) != 2 for shape in shapes):
        raise ValueError(f"ERK needs (C_out, C_in) shapes, got {list(shapes)}")
    total = max(1, round((1.0 - sparsity) * sum(numels)))
    raw = [sum(shape) / numel for shape, numel in zip(shapes, numels, strict=True)]
    dense: set[int] = set()
    while True:  # each pass makes at least one more layer dense, or ends
        budget = total - sum(numels[i] for i in dense)
        weight = sum(raw[i] * numels[i] for i in range(len(shapes)) if i not in dense)
        scale = budget / weight
        over = [i for i in range(len(shapes)) if i not in dense and raw[i] * scale > 1.0]
        if not over:
            break
        dense.add(max(over, key=lambda i: raw[i]))
    exact = [numels[i] if i in dense else raw[i] * scale * numels[i] for i in range(len(shapes))]
    counts = [math.floor(value) for value in exact]
    by_remainder = sorted(range(len(shapes)), key=lambda i: counts[i] - exact[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return [min(max(count, 1), numel) for count, numel in zip(counts, numels, strict=True)]


def random_mask(
    shape: Sequence[int] | torch.Size,
    density: float,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
) -> Tensor:
    """A boolean mask with exactly :func:`active_count` True entries at random places.

    Args:
        shape: mask shape, e.g. (C_out, C_in).
        density: fraction of active entries, in (0, 1].
        generator: source of randomness (a CPU generator gives the same mask
            on every device); None uses torch's global one.
        device: where the mask lives.

    Returns:
        bool tensor of ``shape``.

    Example:
        >>> mask = random_mask((10, 20), 0.1, torch.Generator().manual_seed(0))
        >>> int(mask.sum())
        20
    """
    numel = math.prod(shape)
    count = active_count(numel, density)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    order = torch.randperm(numel, generator=generator, device=gen_device)
    mask = torch.zeros(numel, dtype=torch.bool, device=gen_device)
    mask[order[:count]] = True
    return mask.reshape(tuple(shape)).to(device if device is not None else gen_device)


@torch.no_grad()
def set_density(
    layer: SpatialDelay,
    density: float,
    generator: torch.Generator | None = None,
    *,
    rescale: bool = False,
) -> Tensor:
    """Gives ``layer`` a random mask with exactly the requested density.

    Dormant weights are set to 0 (the convention the callbacks rely on).

    Args:
        layer: the layer to sparsify (its ``mask`` is overwritten in place).
        density: fraction of active synapses, in (0, 1].
        generator: source of randomness; None uses torch's global one.
        rescale: multiply the kept weights by ``1 / sqrt(density)`` so that the
            variance of a neuron's summed input matches the dense layer's
            (each neuron keeps a ``density`` fraction of its inputs).

    Returns:
        The new mask (the layer's buffer).
    """
    density = check_density(density)
    mask = random_mask(layer.mask.shape, density, generator, device=layer.mask.device)
    layer.mask.copy_(mask)
    layer.weight.mul_(layer.mask)
    if rescale:
        layer.weight.mul_(1.0 / math.sqrt(density))
    return layer.mask


@torch.no_grad()
def initialise_sparsity(
    layers: Sequence[tuple[str, SpatialDelay]],
    sparsity: float,
    seed: int,
    *,
    rescale: bool,
    distribution: SparsityDistribution = "uniform",
) -> None:
    """Gives every layer whose active count is not its target a random mask with it.

    Targets per layer from :func:`layer_active_counts`; layer ``i`` draws its
    mask from ``step_generator(seed, 0, i)``. A layer already at its target
    (a second call, a resumed run) is left alone.

    Args:
        layers: ``(name, layer)`` pairs, as :func:`spatial_delay_layers` gives them.
        sparsity: fraction of absent synapses, in [0, 1).
        seed: seeds the masks.
        rescale: scale kept weights by ``1/sqrt(density)`` (see :func:`set_density`).
        distribution: ``"uniform"`` or ``"erk"``.
    """
    shapes = [tuple(layer.mask.shape) for _, layer in layers]
    targets = layer_active_counts(shapes, sparsity, distribution)
    for index, ((_, layer), target) in enumerate(zip(layers, targets, strict=True)):
        if int(layer.mask.sum()) != target:
            generator = step_generator(seed, 0, index)
            set_density(layer, target / layer.mask.numel(), generator, rescale=rescale)


@torch.no_grad()
def assign_dale_signs(
    layer: SpatialDelay,
    excitatory_fraction: float = 0.8,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Makes each presynaptic neuron excitatory (+1) or inhibitory (-1).

    Exactly ``round(excitatory_fraction * C_in)`` neurons, chosen at random,
    are excitatory. The layer then applies ``sign * |w|``; the raw weights are
    replaced by their magnitudes (which leaves the effective weights'
    magnitudes unchanged), so the raw parameter is the non-negative
    :math:`\\theta` of DEEP R.

    Args:
        layer: the layer whose ``sign`` is set.
        excitatory_fraction: in [0, 1].
        generator: source of randomness; None uses torch's global one.

    Returns:
        The (C_in,) sign vector (the layer's buffer).

    Example:
        >>> layer = SpatialDelay(10, 4, max_delay=2)
        >>> sign = assign_dale_signs(layer, 0.8, torch.Generator().manual_seed(0))
        >>> int((sign > 0).sum()), bool((layer.effective_weight() * sign >= 0).all())
        (8, True)
    """
    fraction = check_fraction("excitatory_fraction", excitatory_fraction)
    count = layer.in_features
    excitatory = round(fraction * count)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    order = torch.randperm(count, generator=generator, device=gen_device)
    sign = torch.full((count,), -1.0, device=gen_device)
    sign[order[:excitatory]] = 1.0
    sign = sign.to(device=layer.weight.device, dtype=layer.weight.dtype)
    if layer.sign is None:
        layer.sign = sign
    else:
        layer.sign.copy_(sign)
    layer.weight.abs_()
    return layer.sign


# --------------------------------------------------------------------------- selections


def topk_select(scores: Tensor, eligible: Tensor, count: int, *, largest: bool = True) -> Tensor:
    """The ``count`` eligible entries with the largest (or smallest) scores.

    Ties are broken by ``torch.topk`` (deterministic for equal inputs, so DDP
    ranks agree).

    Args:
        scores: float scores, any shape.
        eligible: bool, same shape; only these entries can be selected.
        count: how many to select; clamped to the number of eligible entries.
        largest: select the largest scores (True) or the smallest (False).

    Returns:
        bool tensor shaped like ``scores`` with ``min(count, eligible.sum())`` True.

    Example:
        >>> scores = torch.tensor([0.5, 3.0, 1.0, 2.0])
        >>> topk_select(scores, torch.tensor([True, False, True, True]), 2)
        tensor([False, False,  True,  True])
    """
    if scores.shape != eligible.shape:
        raise ValueError(
            f"scores {tuple(scores.shape)} and eligible {tuple(eligible.shape)} differ"
        )
    flat_eligible = eligible.reshape(-1)
    count = min(int(count), int(flat_eligible.sum()))
    selected = torch.zeros_like(flat_eligible)
    if count <= 0:
        return selected.reshape(scores.shape)
    fill = -math.inf if largest else math.inf
    flat = scores.reshape(-1).float().masked_fill(~flat_eligible, fill)
    index = torch.topk(flat, count, largest=largest, sorted=False).indices
    selected[index] = True
    return selected.reshape(scores.shape)


def random_select(eligible: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
    """``count`` eligible entries chosen uniformly at random (without replacement).

    Args:
        eligible: bool tensor, any shape.
        count: how many; clamped to the number of eligible entries.
        generator: source of randomness, on ``eligible``'s device or the CPU.

    Returns:
        bool tensor shaped like ``eligible``.
    """
    gen_device = generator.device if generator is not None else eligible.device
    scores = torch.rand(eligible.shape, generator=generator, device=gen_device)
    return topk_select(scores.to(eligible.device), eligible, count, largest=True)


def signed_growth(
    grad: Tensor, candidates: Tensor, count: int, *, dale: bool
) -> tuple[Tensor, Tensor]:
    r"""Regrowth of sign-constrained synapses (DEEP R's :math:`\theta \ge 0`) by dense gradient.

    A synapse regrown at :math:`\theta = 0` survives DEEP R's next sign check
    only if the optimizer moves :math:`\theta` up, so candidates are scored by
    what the gradient offers in an allowed direction: without Dale any sign is
    allowed (score :math:`|\partial L/\partial w|`; the synapse takes the sign
    :math:`-\operatorname{sign}(\partial L/\partial w)` the loss asks for);
    under Dale the raw weight is :math:`\theta` itself (score
    :math:`\max(0, -\partial L/\partial w)`, the sign is the neuron's).

    Args:
        grad: (C_out, C_in) dense gradient of the raw weight.
        candidates: (C_out, C_in) bool, the synapses that may grow.
        count: how many to grow (clamped to the number of candidates).
        dale: whether the layer applies Dale signs (``layer.sign`` set).

    Returns:
        ``(grown, negative)``: bool (C_out, C_in) masks of the regrown synapses
        and of those among them whose fixed sign is -1 (never any under Dale).

    Example:
        >>> grad = torch.tensor([[0.5, -2.0, 1.0]])
        >>> signed_growth(grad, torch.ones(1, 3, dtype=torch.bool), 2, dale=False)
        (tensor([[False,  True,  True]]), tensor([[False, False,  True]]))
        >>> signed_growth(grad, torch.ones(1, 3, dtype=torch.bool), 1, dale=True)
        (tensor([[False,  True, False]]), tensor([[False, False, False]]))
    """
    scores = (-grad).clamp_min(0.0) if dale else grad.abs()
    grown = topk_select(scores, candidates, count, largest=True)
    negative = torch.zeros_like(grown) if dale else grown & (grad > 0)
    return grown, negative


def cosine_drop_fraction(step: int, alpha: float, t_end: int) -> float:
    r"""RigL's update schedule: the fraction of active weights replaced at ``step``.

    .. math:: f(t) = \frac{\alpha}{2}\left(1 + \cos\frac{\pi t}{T_{end}}\right),
        \quad f(t) = 0 \text{ for } t \ge T_{end}

    Example:
        >>> cosine_drop_fraction(0, 0.3, 100), cosine_drop_fraction(50, 0.3, 100)
        (0.3, 0.15)
    """
    if step >= t_end:
        return 0.0
    return round(alpha / 2 * (1 + math.cos(math.pi * step / t_end)), 12)


@torch.no_grad()
def rewire(layer: SpatialDelay, drop: Tensor, grow: Tensor) -> None:
    """Removes the ``drop`` synapses and activates the ``grow`` ones, both at weight 0.

    Args:
        layer: the layer to edit in place.
        drop: bool (C_out, C_in), a subset of the active synapses.
        grow: bool (C_out, C_in), a subset of the dormant synapses.
    """
    if bool((drop & ~layer.mask).any()):
        raise ValueError("drop must select active synapses only")
    if bool((grow & layer.mask).any()):
        raise ValueError("grow must select dormant synapses only")
    layer.mask.logical_and_(~drop).logical_or_(grow)
    layer.weight.masked_fill_(drop | grow, 0.0)


@torch.no_grad()
def zero_optimizer_state(
    optimizers: Iterable[torch.optim.Optimizer], param: Tensor, where: Tensor
) -> None:
    """Resets the optimizer's per-element state (moments, momentum) of ``param`` at ``where``.

    A regrown synapse then starts fresh instead of inheriting the Adam
    moments it had before it was removed. Every state tensor shaped like
    ``param`` is edited (``exp_avg``, ``exp_avg_sq``, ``momentum_buffer``...).
    """
    for optimizer in optimizers:
        for value in optimizer.state.get(param, {}).values():
            if isinstance(value, Tensor) and value.shape == param.shape:
                value.masked_fill_(where, 0)


class RewiringEvent(NamedTuple):
    """What one rewiring update did to one layer.

    Attributes:
        step: optimizer steps taken when the update ran.
        layer: qualified module name of the layer.
        dropped: synapses removed.
        grown: synapses activated (at weight 0).
        active: active synapses after the update.
    """

    step: int
    layer: str
    dropped: int
    grown: int
    active: int


class DenseGradients:
    r"""Dense :math:`\partial L/\partial w` of masked layers, for the steps that ask for it.

    A layer applies ``w * mask``, so the backward pass gives a dormant synapse
    a zero gradient. :meth:`open` sets every mask to True before the forward
    pass; dormant weights are exactly 0 (they are zeroed here first), so the
    forward pass is numerically unchanged, and the backward pass then yields
    :math:`\partial L/\partial w` for every synapse (under Dale
    :math:`\pm\partial L/\partial w^{\mathrm{eff}}`: the same magnitude).
    :meth:`close` records the gradients, zeroes the dormant ones and restores
    the masks. Call it where the gradients are final and nothing has used them
    yet: after backward and after DDP's all-reduce (so every rank records the
    same numbers), before clipping and the optimizer step (so the optimizer
    never sees a dormant gradient). Why not a tensor hook instead of opening
    the masks: a hook on ``weight`` sees the gradient after the mask (zero at
    dormant synapses), the masked weight itself is internal to
    ``SpatialDelay.effective_weight()``, and any hook runs before DDP's
    all-reduce, where ranks would record different gradients and choose
    differently. Opening the masks costs nothing: the dense kernel computes
    every weight's gradient anyway.

    Args:
        layers: ``(name, layer)`` pairs.
    """

    def __init__(self, layers: Sequence[tuple[str, SpatialDelay]]) -> None:
        self.layers = list(layers)
        self._closed: list[Tensor] | None = None
        self._grads: dict[str, Tensor] = {}

    @property
    def is_open(self) -> bool:
        """Whether the masks are open (between :meth:`open` and :meth:`close`)."""
        return self._closed is not None

    @torch.no_grad()
    def open(self) -> None:
        """Zeroes dormant weights and sets every mask to True (once; a second call does nothing)."""
        if self._closed is not None:
            return
        self._closed = []
        for _, layer in self.layers:
            layer.weight.mul_(layer.mask)
            self._closed.append(layer.mask.clone())
            layer.mask.fill_(True)

    @torch.no_grad()
    def close(self, *, record: bool) -> None:
        """Restores the masks and zeroes dormant gradients; with ``record``, keeps the dense ones.

        Does nothing when the masks are not open.
        """
        if self._closed is None:
            return
        for (name, layer), closed in zip(self.layers, self._closed, strict=True):
            grad = layer.weight.grad
            if grad is not None:
                if record:
                    self._grads[name] = grad.clone()
                grad.masked_fill_(~closed, 0.0)
            layer.mask.copy_(closed)
        self._closed = None

    def gradient(self, name: str) -> Tensor | None:
        """(C_out, C_in) dense gradient of layer ``name`` recorded by the last :meth:`close`."""
        return self._grads.get(name)

    @property
    def recorded(self) -> bool:
        """Whether any gradient is recorded (and not yet cleared)."""
        return bool(self._grads)

    def clear(self) -> None:
        """Forgets the recorded gradients."""
        self._grads.clear()


# --------------------------------------------------------------------------- wiring cost


def wiring_distance(layer: SpatialDelay) -> Tensor:
    """(C_out, C_in) length of every synapse, in space units.

    ``spatial``: Euclidean distance between the neurons (unclamped);
    ``free``: the free delay (clamped to [0, max_delay]) times the velocity,
    the length a synapse with that delay would need; ``none``: zeros.
    """
    if layer.delay_mode == "spatial":
        return pairwise_distance(layer.post.coords, layer.pre.coords)
    if layer.delay_mode == "free":
        return layer.delays() * layer.velocity
    return layer.weight.new_zeros(layer.out_features, layer.in_features)


def wiring_cost(layer: SpatialDelay) -> Tensor:
    r"""Total wire of a layer: the weighted length of its active synapses.

    .. math:: C = \sum_{ij} m_{ij}\, |w^{\mathrm{eff}}_{ij}|\, \ell_{ij}

    with :math:`\ell` from :func:`wiring_distance`. Differentiable in the
    weights and the coordinates (or free delays); add ``lambda * cost`` to
    a loss to pull strongly connected neurons together.

    Returns:
        0-dim tensor.

    Example:
        >>> layer = SpatialDelay(3, 2, max_delay=4, delays="none")
        >>> float(wiring_cost(layer))
        0.0
    """
    if not isinstance(layer, SpatialDelay):
        raise TypeError(f"wiring_cost expects a SpatialDelay, got {type(layer).__name__}")
    if layer.delay_mode == "none":
        return layer.weight.new_zeros(())
    return (layer.effective_weight().abs() * wiring_distance(layer)).sum()
