r"""DEEP R (Bellec et al. 2018): sign-constrained rewiring at a fixed number of synapses.

Every synapse k has a fixed sign :math:`s_k` and a parameter
:math:`\theta_k`; it is active while :math:`\theta_k \ge 0` and then its
weight is :math:`w_k = s_k \theta_k`. After each optimizer step, for the
active synapses,

.. math::
    \theta_k \leftarrow \theta_k - \eta\,\alpha + \sqrt{2 \eta T}\,\nu_k,
    \qquad \nu_k \sim \mathcal{N}(0, 1)

(:math:`\eta` the current learning rate of the weight's parameter group,
:math:`\alpha` = ``l1``, :math:`T` = ``noise_temperature``); the gradient part
:math:`-\eta\,\partial E/\partial\theta_k` of the paper's update is the
optimizer's own step. Every active synapse whose :math:`\theta_k` is now
negative (its weight crossed zero, i.e. would have flipped sign) is removed,
and as many dormant synapses are activated, uniformly at random, at
:math:`\theta = 0`. The number of active synapses never changes.

Mapping onto ``SpatialDelay``:

* without Dale, the raw ``weight`` is :math:`w = s\theta`; each synapse's sign
  :math:`s` is fixed when the callback starts (the sign of its weight, or a
  random sign for dormant and zero weights) and saved in the checkpoint;
* with Dale (``layer.sign`` set, e.g. by :class:`~lightning_modules.callbacks.dale.Dale`),
  the layer applies ``sign * |weight|``; the raw weight *is* :math:`\theta`
  (:math:`s_k = +1` for the raw parameter, the layer supplies the
  neuron's sign), so removal happens when the raw weight goes negative.

Why after the step (``on_train_batch_end``, once per optimizer step, not in
``on_before_optimizer_step`` on the gradient): with an adaptive optimizer
(Adam) an L1 or noise term added to the gradient is divided by the gradient's
running RMS, which turns the temperature into a meaningless quantity. Applied
to the parameter after the step, scaled by the current learning rate, the
update keeps the paper's Langevin form whatever the optimizer is (as decoupled
weight decay does). The sign check then sees the final :math:`\theta`.

With :class:`~lightning_modules.callbacks.rigl.RigL` in the same trainer,
replacements are chosen by RigL's dense gradient instead of at random, and a
regrown synapse (without Dale) takes the sign its gradient asks for rather
than a fixed random one; RigL's periodic drop/regrow then runs right after
DEEP R's step (see :mod:`lightning_modules.callbacks.rigl`).

Randomness (noise, random regrowth) comes from generators seeded with
``(seed, global_step, layer index)``, so every DDP rank adds the same noise and
makes the same choices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning as L
import torch
from torch import Tensor

from lightning_modules.callbacks.rigl import (
    RewiringEvent,
    RigL,
    _rewiring_partners,
    initialise_sparsity,
)
from spatial_layers.delay import SpatialDelay
from spatial_layers.sparsity import (
    SparsityDistribution,
    check_distribution,
    check_sparsity,
    random_select,
    spatial_delay_layers,
    step_generator,
    zero_optimizer_state,
)

__all__ = ["DeepR"]


class DeepR(L.Callback):
    """DEEP R rewiring of every ``SpatialDelay`` layer's mask.

    Args:
        sparsity: fraction of absent synapses, in [0, 1); a layer whose mask
            holds another count than its target gets a random mask at fit start.
        l1: L1 strength :math:`\\alpha` (>= 0), in loss units per unit weight.
        noise_temperature: temperature :math:`T` (>= 0) of the random walk.
        seed: seeds the masks, the fixed synapse signs, the noise and the
            random regrowth.
        layers: ``fnmatch`` patterns on module names selecting the layers;
            None takes every ``SpatialDelay``.
        rescale: when the initial mask is drawn, scale kept weights by
            ``1/sqrt(density)``.
        distribution: ``"uniform"`` (every layer at ``sparsity``) or
            ``"erk"`` (``sparsity`` over all layers, spread as RigL's ERK);
            see :class:`~lightning_modules.callbacks.rigl.RigL`.

    Attributes:
        last_events: :class:`~lightning_modules.callbacks.rigl.RewiringEvent`
            of the most recent step (one per layer).
        removed_total: synapses removed so far, per layer name.
    """

    def __init__(
        self,
        sparsity: float = 0.9,
        l1: float = 1e-5,
        noise_temperature: float = 1e-8,
        seed: int = 0,
        *,
        layers: list[str] | None = None,
        rescale: bool = False,
        distribution: SparsityDistribution = "uniform",
    ) -> None:
        super().__init__()
        self.sparsity = check_sparsity(sparsity)
        self.distribution = check_distribution(distribution)
        for name, value in (("l1", l1), ("noise_temperature", noise_temperature)):
            if isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.l1 = float(l1)
        self.noise_temperature = float(noise_temperature)
        self.seed = int(seed)
        self.layers = list(layers) if layers is not None else None
        self.rescale = rescale
        self.last_events: list[RewiringEvent] = []
        self.removed_total: dict[str, int] = {}
        self._layers: list[tuple[str, SpatialDelay]] = []
        self._negative: dict[str, Tensor] = {}  # fixed sign per synapse: True = -1
        self._regrower: RigL | None = None
        self._pl_module: L.LightningModule | None = None
        self._last_step = 0

    # ----------------------------------------------------------------- lifecycle

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._layers = spatial_delay_layers(pl_module, self.layers)
        if not self._layers:
            raise ValueError(f"DeepR found no SpatialDelay layer matching {self.layers}")
        if len(_rewiring_partners(trainer, DeepR)) > 1:
            raise ValueError("use one DeepR callback per trainer")
        partners = _rewiring_partners(trainer, RigL)
        self._regrower = partners[0] if partners else None
        self._pl_module = pl_module
        initialise_sparsity(
            self._layers,
            self.sparsity,
            self.seed,
            rescale=self.rescale,
            distribution=self.distribution,
        )

    @torch.no_grad()
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_step = trainer.global_step
        for index, (name, layer) in enumerate(self._layers):
            weight = layer.weight
            if layer.sign is not None:  # Dale: the raw weight is theta >= 0
                negative = torch.zeros_like(layer.mask)
                weight.abs_()
            elif name in self._negative:  # restored from a checkpoint
                negative = self._negative[name].to(layer.mask.device)
            else:
                generator = step_generator(self.seed, 0, index, 1)
                coin = torch.rand(weight.shape, generator=generator) < 0.5
                negative = torch.where(weight != 0, weight < 0, coin.to(weight.device))
            self._negative[name] = negative
            weight.mul_(layer.mask)
            self.removed_total.setdefault(name, 0)

    def state_dict(self) -> dict:
        return {"negative": {name: t.cpu() for name, t in self._negative.items()}}

    def load_state_dict(self, state_dict: dict) -> None:
        self._negative = dict(state_dict.get("negative", {}))

    # ----------------------------------------------------------------- rewiring

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step == self._last_step:
            return  # gradient accumulation: no optimizer step in this batch
        self._last_step = step
        events = self.rewire(step, trainer.optimizers)
        removed = float(sum(event.dropped for event in events))
        pl_module.log(
            "rewiring/deepr_removed", removed, on_step=False, on_epoch=True, reduce_fx="sum"
        )

    def _learning_rate(self, param: Tensor, optimizers: Sequence[torch.optim.Optimizer]) -> float:
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                if any(p is param for p in group["params"]):
                    return float(group["lr"])
        return 0.0

    @torch.no_grad()
    def rewire(
        self, step: int, optimizers: Sequence[torch.optim.Optimizer] = ()
    ) -> list[RewiringEvent]:
        """L1 + noise on the active parameters, then remove sign flips and regrow.

        Args:
            step: optimizer steps taken so far (seeds the randomness).
            optimizers: the optimizers holding the weights (learning rate,
                state reset of changed synapses).
        """
        events = []
        for index, (name, layer) in enumerate(self._layers):
            weight, mask = layer.weight, layer.mask
            sign = 1.0 - 2.0 * self._negative[name].to(weight.dtype)
            theta = weight * sign
            lr = self._learning_rate(weight, optimizers)
            if lr > 0 and self.l1 > 0:
                theta.sub_(lr * self.l1)
            if lr > 0 and self.noise_temperature > 0:
                generator = step_generator(self.seed, step, index, device=weight.device)
                noise = torch.randn(weight.shape, generator=generator, device=weight.device)
                theta.add_(noise.to(theta.dtype), alpha=math.sqrt(2 * lr * self.noise_temperature))
            theta.masked_fill_(~mask, 0.0)  # dormant synapses do not move
            removed = mask & (theta < 0)
            count = int(removed.sum())
            grown = torch.zeros_like(mask)
            if count:
                dormant = ~mask
                if self._regrower is not None:
                    grown, negative = self._regrower.regrow(name, layer, dormant, count)
                    self.set_signs(name, grown, negative)
                    sign = 1.0 - 2.0 * self._negative[name].to(weight.dtype)
                else:
                    generator = step_generator(self.seed, step, index, 2, device=weight.device)
                    grown = random_select(dormant, count, generator)
                shortfall = count - int(grown.sum())
                if shortfall > 0:  # fewer dormant synapses than removals: revive removed ones
                    generator = step_generator(self.seed, step, index, 3, device=weight.device)
                    grown |= random_select(removed, shortfall, generator)
                mask.logical_and_(~removed).logical_or_(grown)
                zero_optimizer_state(optimizers, weight, removed | grown)
            # Active synapses take the new theta; removed and regrown ones hold 0.
            theta.masked_fill_(~mask | grown, 0.0)
            weight.copy_(theta.clamp_min(0.0) * sign)
            self.removed_total[name] = self.removed_total.get(name, 0) + count
            events.append(RewiringEvent(step, name, count, count, int(mask.sum())))
        if self._regrower is not None and self._regrower.is_update_step(step):
            self._regrower.update(step, optimizers, self._pl_module)
        self.last_events = events
        return events

    def set_signs(self, name: str, where: Tensor, negative: Tensor) -> None:
        """Fixes the signs of layer ``name``'s synapses ``where`` (``negative``: -1)."""
        self._negative[name] = torch.where(where, negative, self._negative[name])
