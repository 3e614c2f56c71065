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

With :class:`~lightning_modules.callbacks.rigl.RigL` in the same trainer
(any callback that regrows by gradient, see
:mod:`lightning_modules.callbacks.rewiring`), replacements are chosen by the
dense gradient instead of at random, and a regrown synapse (without Dale)
takes the sign its gradient asks for rather than a fixed random one
(:func:`~spatial_layers.sparsity.signed_growth`); RigL's periodic drop/regrow
then runs right after DEEP R's step. The fixed signs live in the trainer's
shared :class:`~lightning_modules.callbacks.rewiring.Rewiring`, so that RigL
can set those of the synapses it grows.

Randomness (noise, random regrowth) comes from generators seeded with
``(seed, global_step, layer index)``, so every DDP rank adds the same noise and
makes the same choices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor

from lightning_modules.callbacks.rewiring import RewiringCallback
from spatial_layers.sparsity import (
    RewiringEvent,
    random_select,
    signed_growth,
    step_generator,
    zero_optimizer_state,
)


class DeepR(RewiringCallback):
    """DEEP R rewiring of every ``SpatialDelay`` layer's mask.

    Args:
        sparsity: fraction of absent synapses, in [0, 1).
        l1: L1 strength :math:`\\alpha` (>= 0), in loss units per unit weight.
        noise_temperature: temperature :math:`T` (>= 0) of the random walk.
        seed: seeds the masks, the fixed synapse signs, the noise and the
            random regrowth.
        **options: ``layers``, ``rescale``, ``distribution`` (which layers,
            initial scaling, ``"uniform"`` or ``"erk"``), as
            :class:`~lightning_modules.callbacks.rewiring.RewiringCallback`.

    Attributes:
        last_events: :class:`~spatial_layers.sparsity.RewiringEvent` of the
            most recent step (one per layer).
        removed_total: synapses removed so far, per layer name.
    """

    order = 0  # removals first, then RigL's periodic update
    fixes_signs = True

    def __init__(
        self,
        sparsity: float = 0.9,
        l1: float = 1e-5,
        noise_temperature: float = 1e-8,
        seed: int = 0,
        **options: Any,
    ) -> None:
        super().__init__(sparsity, seed, **options)
        for name, value in (("l1", l1), ("noise_temperature", noise_temperature)):
            if isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.l1 = float(l1)
        self.noise_temperature = float(noise_temperature)
        self.removed_total: dict[str, int] = {}
        self._restored: dict[str, Tensor] = {}  # signs from a checkpoint or an earlier fit

    # ----------------------------------------------------------------- lifecycle

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and self.rewiring is not None:
            self._restored = self.rewiring.negative_signs()  # this callback fitted before
        super().setup(trainer, pl_module, stage)

    @torch.no_grad()
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        for index, (name, layer) in enumerate(self.rewiring.layers):
            weight = layer.weight
            if layer.sign is not None:  # Dale: the raw weight is theta >= 0
                negative = torch.zeros_like(layer.mask)
                weight.abs_()
            elif name in self._restored:
                negative = self._restored[name].to(layer.mask.device)
            else:
                generator = step_generator(self.seed, 0, index, 1)
                coin = torch.rand(weight.shape, generator=generator) < 0.5
                negative = torch.where(weight != 0, weight < 0, coin.to(weight.device))
            self.rewiring.fix_signs(name, negative)
            weight.mul_(layer.mask)
            self.removed_total.setdefault(name, 0)

    def state_dict(self) -> dict:
        signs = self.rewiring.negative_signs() if self.rewiring is not None else self._restored
        return {"negative": {name: t.cpu() for name, t in signs.items()}}

    def load_state_dict(self, state_dict: dict) -> None:
        self._restored = dict(state_dict.get("negative", {}))

    def synapse_signs(self, name: str) -> Tensor:
        """(C_out, C_in) fixed sign :math:`s_k` (+1/-1) of layer ``name``'s synapses.

        Under Dale all +1: the layer applies the neuron's sign itself.
        """
        return self.rewiring.signs(name)

    # ----------------------------------------------------------------- rewiring

    def needs_dense_gradient(self, step: int) -> bool:
        """Every step when replacements follow the dense gradient (RigL in the trainer)."""
        return self.rewiring.gradient_regrowth

    def rewire_after_step(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        events = self.rewire(trainer.global_step, trainer.optimizers)
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
        rewiring = self.rewiring
        for index, (name, layer) in enumerate(rewiring.layers):
            weight, mask = layer.weight, layer.mask
            sign = rewiring.signs(name).to(weight.dtype)
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
                if rewiring.gradient_regrowth:
                    grad = rewiring.dense.gradient(name)
                    if grad is None:
                        raise RuntimeError(
                            f"no dense gradient of {name!r} was recorded at step {step}; "
                            "with gradient regrowth it is recorded at every step"
                        )
                    grown, negative = signed_growth(
                        grad, dormant, count, dale=layer.sign is not None
                    )
                    rewiring.fix_signs(name, negative, where=grown)
                    sign = rewiring.signs(name).to(weight.dtype)
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
        self.last_events = events
        return events
