"""Neuron coordinates and the distance -> delay map.

A population of neurons owns one :class:`NeuronPositions` module. Every layer
that touches the population (the layer feeding it, the layer it feeds, its own
recurrent layer) holds a reference to the *same* module, so one coordinate
update moves the delays of all those synapses at once.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from spatial_layers.arguments import check_count, check_fits, check_positive, is_int
from spatial_layers.vmap_rules import batched_first

PositionInit = Literal["uniform", "normal"]
POSITION_INITS: tuple[str, ...] = ("uniform", "normal")


def pairwise_distance(post: Tensor, pre: Tensor) -> Tensor:
    r"""Euclidean distance between every post- and presynaptic neuron.

    .. math:: \mathrm{dist}_{ij} = \lVert p_i - p_j \rVert_2

    The gradient at coincident points (distance 0) is defined as 0 instead of
    the NaN that ``torch.linalg.norm`` would give, so neurons that start on
    top of each other can still learn. A NaN coordinate gives NaN distances
    (never 0: a broken neuron must not pass for a synapse without delay).

    One autograd node (:class:`Distances`): 4 ops forward, a handful backward.

    Args:
        post: (C_out, D) coordinates of the postsynaptic neurons.
        pre: (C_in, D) coordinates of the presynaptic neurons.

    Returns:
        (C_out, C_in) distances, in space units.
    """
    pre = _check_dims(post, pre)
    return Distances.apply(post, pre, None, None)


def clamp_delays(delays: Tensor, max_delay: float) -> Tensor:
    """``delays`` clamped to [0, max_delay] steps, a non-finite one made NaN first.

    ``clamp`` maps +Inf to ``max_delay`` and -Inf to 0: an Inf coordinate, an Inf free
    delay or a distance / velocity that overflows would become a plausible delay and a
    finite output. As NaN it propagates to the output, as a NaN parameter does (the rule
    of every delay in the package: :func:`distance_to_delay`, the fused
    :func:`coordinate_delays` and a layer's free delays).

    Example:
        >>> clamp_delays(torch.tensor([-1.0, 2.5, 9.0, float("inf")]), 4)
        tensor([0.0000, 2.5000, 4.0000,    nan])
    """
    finite = torch.where(torch.isinf(delays), torch.nan, delays)
    return finite.clamp(0.0, float(max_delay))


def coordinate_delays(post: Tensor, pre: Tensor, velocity: float, max_delay: int) -> Tensor:
    """``distance_to_delay(pairwise_distance(post, pre), velocity, max_delay)`` in one
    autograd node (:class:`Distances`), with the same numbers and gradients (up to
    float summation order): the delays of a spatial layer, (C_out, C_in) steps."""
    pre = _check_dims(post, pre)
    return Distances.apply(post, pre, float(velocity), float(max_delay))


def _check_dims(post: Tensor, pre: Tensor) -> Tensor:
    """Raises unless the coordinates share a dimension; returns ``pre``, as a view when it
    is ``post`` itself (a recurrent layer): ``torch.compile`` refuses one tensor passed
    twice to an autograd Function."""
    if post.shape[-1] != pre.shape[-1]:
        raise ValueError(
            f"post and pre coordinates must have the same dimension, got "
            f"{post.shape[-1]} and {pre.shape[-1]}"
        )
    return pre.view_as(pre) if pre is post else pre


class Distances(torch.autograd.Function):
    r"""Pairwise distances, or the delays ``clamp(dist / v, 0, d_max)``, with a fused backward.

    Forward: the operations of the composite form (difference, square, sum, square
    root, then divide and clamp), so the same bits. Backward, with
    :math:`r_{ij} = g_{ij} / (v\,\mathrm{dist}_{ij})` where the delay is strictly inside
    (0, d_max) (``clamp``'s own gradient rule) and 0 elsewhere (also at coincident
    points); for plain distances (no ``velocity``) :math:`r_{ij} = g_{ij} / \mathrm{dist}_{ij}`,
    0 at coincident points, NaN for a NaN distance. A non-finite delay is NaN
    (:func:`clamp_delays`), and its gradient 0:

    .. math::
        \frac{\partial L}{\partial p_i} = \sum_j r_{ij} (p_i - p_j), \qquad
        \frac{\partial L}{\partial q_j} = -\sum_i r_{ij} (p_i - q_j)

    Leading batch dimensions are allowed (``torch.vmap`` folds its dimension in).
    """

    @staticmethod
    def forward(post: Tensor, pre: Tensor, velocity: float | None, max_delay: float | None):
        squared = (post[..., :, None, :] - pre[..., None, :, :]).pow(2).sum(-1)
        # sqrt(0) = 0 at coincident points and NaN stays NaN: the forward needs no guard.
        distance = squared.sqrt()
        if velocity is None:
            return distance
        return clamp_delays(distance / velocity, max_delay)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        post, pre, velocity, max_delay = inputs
        ctx.save_for_backward(post, pre, output)
        ctx.constants = (velocity, max_delay)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        post, pre, output = ctx.saved_tensors
        velocity, max_delay = ctx.constants
        if velocity is None:
            ratio = torch.where(output == 0, 0.0, grad / output)
        else:
            inside = (output > 0) & (output < max_delay)
            ratio = torch.where(inside, grad / (output * velocity**2), 0.0)
        weighted = ratio[..., None] * (post[..., :, None, :] - pre[..., None, :, :])
        grad_post = weighted.sum(-2) if ctx.needs_input_grad[0] else None
        grad_pre = -weighted.sum(-3) if ctx.needs_input_grad[1] else None
        return grad_post, grad_pre, None, None

    @staticmethod
    def vmap(info, in_dims, post, pre, velocity, max_delay):
        post, pre = batched_first(info, in_dims[:2], post, pre)
        return Distances.apply(post, pre, velocity, max_delay), 0


def distance_to_delay(distance: Tensor, velocity: float, max_delay: int) -> Tensor:
    r"""Conduction delay of each synapse, in time steps.

    .. math:: d_{ij} = \mathrm{clamp}(\mathrm{dist}_{ij} / v,\ 0,\ d_{max})

    A non-finite quotient (an Inf distance, or an overflow) is NaN (:func:`clamp_delays`).

    Args:
        distance: distances in space units, any shape.
        velocity: conduction velocity in space units per time step (> 0).
        max_delay: largest delay in steps.

    Returns:
        Delays in steps, same shape as ``distance``.
    """
    return clamp_delays(distance / velocity, max_delay)


def default_position_scale(velocity: float, max_delay: int, dim: int) -> float:
    r"""The size of the initial cloud of neurons: ``velocity * max(max_delay, 1) / sqrt(dim)``.

    With every coordinate in U[0, scale], the largest distances of the cloud
    (:math:`\sqrt{D}` scale) span the delay range, so the initial delays cover
    [0, max_delay] steps.

    Example:
        >>> default_position_scale(1.0, 10, 4)
        5.0
    """
    return velocity * max(max_delay, 1) / math.sqrt(max(dim, 1))


class NeuronPositions(nn.Module):
    """Learnable coordinates of one neuron population.

    Args:
        num_neurons: number of neurons N in the population.
        dim: dimension D of the space (>= 1).
        init: ``"uniform"`` draws each coordinate from U[0, scale];
            ``"normal"`` from N(0, scale^2).
        scale: size of the initial cloud, in space units.

    Attributes:
        coords: Parameter of shape (N, D), in space units.

    Example:
        >>> pos = NeuronPositions(700, dim=2)
        >>> pos.coords.shape
        torch.Size([700, 2])
    """

    def __init__(
        self,
        num_neurons: int,
        dim: int = 2,
        *,
        init: PositionInit = "uniform",
        scale: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        num_neurons = check_count("num_neurons", num_neurons, 1)
        if is_int(dim) and dim < 1:
            raise ValueError(
                f"dim must be >= 1, got {dim}; for a layer without delays use "
                "SpatialDelay(..., delays='none')"
            )
        dim = check_count("dim", dim, 1, "coordinates per neuron")
        if init not in POSITION_INITS:
            raise ValueError(f"init must be one of {POSITION_INITS}, got {init!r}")
        scale = check_positive("scale", scale, "space units")
        check_fits(
            f"NeuronPositions({num_neurons}, dim={dim})",
            num_neurons * dim,
            "coordinates",
            torch.empty((), dtype=dtype).element_size(),
            device,
            "use fewer neurons or dimensions",
        )
        self.num_neurons = num_neurons
        self.dim = dim
        self.init = init
        self.scale = scale
        self.coords = nn.Parameter(torch.empty(num_neurons, dim, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            if self.init == "uniform":
                self.coords.uniform_(0.0, self.scale)
            else:
                self.coords.normal_(0.0, self.scale)

    def forward(self) -> Tensor:
        """Returns the (N, D) coordinates."""
        return self.coords

    def extra_repr(self) -> str:
        return f"{self.num_neurons}, dim={self.dim}, init={self.init!r}, scale={self.scale}"
