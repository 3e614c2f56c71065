r"""RigL (Evci et al. 2020): prune the smallest weights, regrow where the gradient is largest.

Algorithm (per ``SpatialDelay`` layer, with ``t`` the number of optimizer
steps taken so far and :math:`T_{end}` = ``t_end_fraction`` x the planned
number of steps):

.. math::
    \text{every } \Delta T \text{ steps while } t < T_{end}:\quad
    k = \operatorname{round}\!\Big(\frac{\alpha}{2}\big(1 + \cos\frac{\pi t}{T_{end}}\big)
        \, N_{active}\Big)

drop the k active synapses with the smallest :math:`|w|`, then activate the k
dormant synapses with the largest dense gradient :math:`|\partial L / \partial
w^{\mathrm{eff}}|`; regrown weights start at 0 and their optimizer moments are
reset. The number of active synapses per layer never changes.

Dense gradients. A layer applies ``w * mask``, which gives dormant synapses
a zero gradient, so on the steps whose optimizer step is an update step the
shared :class:`~spatial_layers.sparsity.DenseGradients` of the trainer's
rewiring (:mod:`lightning_modules.callbacks.rewiring`) opens the masks for the
forward and backward pass and records :math:`\partial L/\partial w` of every
synapse before gradient clipping and the optimizer step, which never see a
dormant gradient. Under DDP the gradients recorded are the all-reduced ones,
and every rank makes the same choice (ties broken identically by ``torch.topk``).

Order within an update step: forward/backward (mask open) -> optimizer step
on the active synapses -> drop/regrow after the batch, using the weights
after the step and the gradient of that step (the paper skips the SGD step on
update steps; taking both is the simplification common PyTorch ports make).

With :class:`~lightning_modules.callbacks.deepr.DeepR` in the same trainer
("DEEP R for removal, RigL for regrowth"): after every step DEEP R removes the
synapses whose parameter crossed zero and chooses their replacements among
the dormant synapses by dense gradient (``regrows_by_gradient``: RigL's rule
instead of DEEP R's uniform random choice), so the masks open at every step;
RigL's own periodic magnitude drop/regrow still runs on its schedule, right
after DEEP R's step. A synapse RigL grows under DEEP R's fixed signs must
survive DEEP R's next sign check, so it is chosen and signed by
:func:`~spatial_layers.sparsity.signed_growth` (the sign its gradient asks for
without Dale; only synapses that can grow in their neuron's direction with
Dale). Both callbacks must ask for the same sparsity and layers.

Regrowth candidates are the synapses that were dormant *before* the update
(a synapse dropped in this update is not regrown in the same update), so
exactly k synapses leave and k different ones arrive; k is capped by the
number of dormant synapses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch

from lightning_modules.callbacks.rewiring import RewiringCallback
from lightning_modules.run_length import planned_steps
from spatial_layers.sparsity import (
    RewiringEvent,
    check_fraction,
    cosine_drop_fraction,
    rewire,
    signed_growth,
    topk_select,
    zero_optimizer_state,
)


class RigL(RewiringCallback):
    """Rigged-lottery rewiring of every ``SpatialDelay`` layer's mask.

    Args:
        sparsity: fraction of absent synapses, in [0, 1).
        alpha: initial fraction of active synapses replaced per update, (0, 1].
        delta_t: optimizer steps between updates (int >= 1).
        t_end_fraction: updates stop after this fraction of the planned
            optimizer steps (``trainer.estimated_stepping_batches``), (0, 1].
        seed: seeds the initial random masks (RigL's updates are deterministic).
        **options: ``layers``, ``rescale``, ``distribution`` (which layers,
            initial scaling, ``"uniform"`` or ``"erk"``), as
            :class:`~lightning_modules.callbacks.rewiring.RewiringCallback`.

    Attributes:
        last_events: :class:`~spatial_layers.sparsity.RewiringEvent` of the
            most recent update.
        t_end: the step at which updates stop (set at train start).
    """

    order = 1  # after DEEP R's removals
    regrows_by_gradient = True

    def __init__(
        self,
        sparsity: float = 0.9,
        alpha: float = 0.3,
        delta_t: int = 100,
        t_end_fraction: float = 0.75,
        seed: int = 0,
        **options: Any,
    ) -> None:
        super().__init__(sparsity, seed, **options)
        self.alpha = check_fraction("alpha", alpha)
        if self.alpha == 0:
            raise ValueError("alpha must be in (0, 1]; alpha = 0 never rewires")
        if isinstance(delta_t, bool) or not isinstance(delta_t, int) or delta_t < 1:
            raise ValueError(f"delta_t must be an int >= 1 (optimizer steps), got {delta_t!r}")
        self.delta_t = delta_t
        self.t_end_fraction = check_fraction("t_end_fraction", t_end_fraction)
        if self.t_end_fraction == 0:
            raise ValueError("t_end_fraction must be in (0, 1]; 0 never rewires")
        self.t_end = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self.t_end = int(self.t_end_fraction * planned_steps(trainer, "RigL"))

    def is_update_step(self, step: int) -> bool:
        """Whether RigL drops/regrows after the step that brings ``global_step`` to ``step``."""
        return step % self.delta_t == 0 and step < self.t_end

    def needs_dense_gradient(self, step: int) -> bool:
        """Whether the step to ``step`` is an update step (its dense gradient chooses regrowth)."""
        return self.is_update_step(step)

    def dense_gradient(self, name: str) -> torch.Tensor | None:
        """Dense dL/dw of layer ``name`` (dormant synapses included) recorded at this step."""
        return self.rewiring.dense.gradient(name)

    def rewire_after_step(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.is_update_step(trainer.global_step) and self.rewiring.dense.recorded:
            self.update(trainer.global_step, trainer.optimizers, pl_module)

    @torch.no_grad()
    def update(
        self,
        step: int,
        optimizers: Sequence[torch.optim.Optimizer] = (),
        pl_module: L.LightningModule | None = None,
    ) -> list[RewiringEvent]:
        """One RigL drop/regrow of every layer, with the dense gradients recorded at this step.

        Under fixed synapse signs (DEEP R in the trainer) the regrown synapses
        are chosen and signed by :func:`~spatial_layers.sparsity.signed_growth`.
        """
        rewiring = self.rewiring
        fraction = cosine_drop_fraction(step, self.alpha, self.t_end)
        events = []
        for name, layer in rewiring.layers:
            grad = rewiring.dense.gradient(name)
            if grad is None:
                continue
            active = int(layer.mask.sum())
            count = min(round(fraction * active), layer.mask.numel() - active)
            drop = topk_select(layer.weight.abs(), layer.mask, count, largest=False)
            if rewiring.sign_constrained:
                grow, negative = signed_growth(
                    grad, ~layer.mask, count, dale=layer.sign is not None
                )
                rewiring.fix_signs(name, negative, where=grow)
            else:
                grow = topk_select(grad.abs(), ~layer.mask, count, largest=True)
            rewire(layer, drop, grow)
            zero_optimizer_state(optimizers, layer.weight, drop | grow)
            events.append(RewiringEvent(step, name, count, count, int(layer.mask.sum())))
        self.last_events = events
        if isinstance(pl_module, L.LightningModule):
            replaced = float(sum(event.dropped for event in events))
            pl_module.log(
                "rewiring/rigl_replaced", replaced, on_step=False, on_epoch=True, reduce_fx="sum"
            )
        return events
