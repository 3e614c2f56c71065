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

Dense gradients. ``effective_weight() = w * mask`` gives dormant synapses a
zero gradient, so RigL *opens* the mask (all True) at the start of the
training batch whose optimizer step is an update step, and closes it again in
``on_before_optimizer_step``. Dormant weights are kept at exactly 0, so the
forward pass is numerically unchanged while the mask is open; the backward
pass then yields :math:`\partial L/\partial w` for every synapse (under Dale,
:math:`\pm\partial L/\partial w^{\mathrm{eff}}`: same magnitude). At
``on_before_optimizer_step`` RigL records those magnitudes, zeroes the dormant
gradients and restores the mask, before gradient clipping and the optimizer
step, so the optimizer never sees a dormant gradient. Under DDP the gradients
read there are the already all-reduced ones, and every rank makes the same
choice (ties broken identically by ``torch.topk``). Opening the mask costs
nothing: the dense layer computes every weight's gradient anyway.

Order within an update step: forward/backward (mask open) -> optimizer step
on the active synapses -> drop/regrow in ``on_train_batch_end`` using the
weights after the step and the gradient of that step (the paper skips the
SGD step on update steps; taking both is the simplification common PyTorch
ports make).

With :class:`~lightning_modules.callbacks.deepr.DeepR` in the same trainer
("DEEP R for removal, RigL for regrowth"): after every step DEEP R removes the
synapses whose parameter crossed zero and RigL chooses their replacements
among the dormant synapses by dense gradient (instead of DEEP R's uniform
random choice), so RigL opens the mask at every step; RigL's own periodic
magnitude drop/regrow still runs on its schedule, right after DEEP R's step.
A synapse RigL regrows for DEEP R must survive DEEP R's next sign check, so
(see :meth:`RigL.regrow`) it takes the sign its gradient asks for (without
Dale) or must be able to grow in its neuron's direction (with Dale). Both
callbacks must ask for the same sparsity and layers.

Regrowth candidates are the synapses that were dormant *before* the update
(a synapse dropped in this update is not regrown in the same update), so
exactly k synapses leave and k different ones arrive; k is capped by the
number of dormant synapses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from spatial_layers.delay import SpatialDelay
from spatial_layers.sparsity import (
    SparsityDistribution,
    check_distribution,
    check_fraction,
    check_sparsity,
    cosine_drop_fraction,
    layer_active_counts,
    rewire,
    set_density,
    spatial_delay_layers,
    step_generator,
    topk_select,
    zero_optimizer_state,
)

__all__ = ["RewiringEvent", "RigL", "initialise_sparsity"]


class RewiringEvent(NamedTuple):
    """What one rewiring update did to one layer.

    Attributes:
        step: optimizer steps taken when the update ran (``trainer.global_step``).
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

    Targets per layer from :func:`~spatial_layers.sparsity.layer_active_counts`.
    """
    shapes = [tuple(layer.mask.shape) for _, layer in layers]
    targets = layer_active_counts(shapes, sparsity, distribution)
    for index, ((_, layer), target) in enumerate(zip(layers, targets, strict=True)):
        if int(layer.mask.sum()) != target:
            generator = step_generator(seed, 0, index)
            set_density(layer, target / layer.mask.numel(), generator, rescale=rescale)


def _rewiring_partners(trainer: L.Trainer, cls: type) -> list[L.Callback]:
    return [cb for cb in trainer.callbacks if isinstance(cb, cls)]


class RigL(L.Callback):
    """Rigged-lottery rewiring of every ``SpatialDelay`` layer's mask.

    Args:
        sparsity: fraction of absent synapses, in [0, 1); a layer whose mask
            holds another count than its target gets a random mask at fit start.
        alpha: initial fraction of active synapses replaced per update, (0, 1].
        delta_t: optimizer steps between updates (int >= 1).
        t_end_fraction: updates stop after this fraction of the planned
            optimizer steps (``trainer.estimated_stepping_batches``), (0, 1].
        seed: seeds the initial random masks (RigL's updates are deterministic).
        layers: ``fnmatch`` patterns on module names selecting the layers to
            sparsify (e.g. ``["net.*"]``); None takes every ``SpatialDelay``.
        rescale: when the initial mask is drawn, scale kept weights by
            ``1/sqrt(density)`` to keep each neuron's input variance.
        distribution: how ``sparsity`` is spread over the layers: ``"uniform"``
            (every layer at ``sparsity``) or ``"erk"`` (Erdős–Rényi, RigL's
            default: ``sparsity`` over all layers together, small layers
            denser; see :func:`~spatial_layers.sparsity.layer_active_counts`).
            Either way each layer's count stays constant during training.

    Attributes:
        last_events: :class:`RewiringEvent` of the most recent update.
        t_end: the step at which updates stop (set at train start).
    """

    def __init__(
        self,
        sparsity: float = 0.9,
        alpha: float = 0.3,
        delta_t: int = 100,
        t_end_fraction: float = 0.75,
        seed: int = 0,
        *,
        layers: list[str] | None = None,
        rescale: bool = False,
        distribution: SparsityDistribution = "uniform",
    ) -> None:
        super().__init__()
        self.sparsity = check_sparsity(sparsity)
        self.distribution = check_distribution(distribution)
        self.alpha = check_fraction("alpha", alpha)
        if self.alpha == 0:
            raise ValueError("alpha must be in (0, 1]; alpha = 0 never rewires")
        if isinstance(delta_t, bool) or not isinstance(delta_t, int) or delta_t < 1:
            raise ValueError(f"delta_t must be an int >= 1 (optimizer steps), got {delta_t!r}")
        self.delta_t = delta_t
        self.t_end_fraction = check_fraction("t_end_fraction", t_end_fraction)
        if self.t_end_fraction == 0:
            raise ValueError("t_end_fraction must be in (0, 1]; 0 never rewires")
        self.seed = int(seed)
        self.layers = list(layers) if layers is not None else None
        self.rescale = rescale
        self.t_end = 0
        self.last_events: list[RewiringEvent] = []
        self._layers: list[tuple[str, SpatialDelay]] = []
        self._deepr = None  # a DeepR partner in the same trainer, if any
        self._last_step = 0
        self._closed_masks: list[Tensor] | None = None
        self._grads: dict[str, Tensor] = {}  # dense dL/dw of the latest recorded step

    # ----------------------------------------------------------------- lifecycle

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        from lightning_modules.callbacks.deepr import DeepR  # deepr imports this module

        self._layers = spatial_delay_layers(pl_module, self.layers)
        if not self._layers:
            raise ValueError(f"RigL found no SpatialDelay layer matching {self.layers}")
        partners = _rewiring_partners(trainer, DeepR)
        self._deepr = partners[0] if partners else None
        for partner in partners:
            ours = (self.sparsity, self.distribution, self.layers)
            theirs = (partner.sparsity, partner.distribution, partner.layers)
            if ours != theirs:
                raise ValueError(
                    f"DeepR (sparsity, distribution, layers = {theirs}) and RigL ({ours}) "
                    "must rewire the same layers at the same sparsity"
                )
        if self._deepr is not None:
            rank_zero_info("RigL + DeepR: DeepR removes sign flips each step, RigL regrows them")
        initialise_sparsity(
            self._layers,
            self.sparsity,
            self.seed,
            rescale=self.rescale,
            distribution=self.distribution,
        )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ValueError("RigL needs a finite training length: set max_steps or max_epochs")
        self.t_end = int(self.t_end_fraction * total)
        self._last_step = trainer.global_step

    def is_update_step(self, step: int) -> bool:
        """Whether RigL drops/regrows after the step that brings ``global_step`` to ``step``."""
        return step % self.delta_t == 0 and step < self.t_end

    def needs_dense_gradient(self, step: int) -> bool:
        """Whether the step to ``step`` must record dense gradients (every step with DeepR)."""
        return self._deepr is not None or self.is_update_step(step)

    # ----------------------------------------------------------------- dense gradients

    @torch.no_grad()
    def _open_masks(self) -> None:
        self._closed_masks = []
        for _, layer in self._layers:
            layer.weight.mul_(layer.mask)  # dormant weights are exactly 0
            self._closed_masks.append(layer.mask.clone())
            layer.mask.fill_(True)

    @torch.no_grad()
    def _close_masks(self, record: bool) -> None:
        if self._closed_masks is None:
            return
        for (name, layer), closed in zip(self._layers, self._closed_masks, strict=True):
            grad = layer.weight.grad
            if grad is not None:
                if record:
                    self._grads[name] = grad.clone()
                grad.masked_fill_(~closed, 0.0)
            layer.mask.copy_(closed)
        self._closed_masks = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._closed_masks is None and self.needs_dense_gradient(trainer.global_step + 1):
            self._open_masks()

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self._close_masks(record=True)

    def dense_gradient(self, name: str) -> Tensor | None:
        """Dense dL/dw of layer ``name`` (dormant synapses included) at the latest update step."""
        return self._grads.get(name)

    # ----------------------------------------------------------------- rewiring

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._close_masks(record=False)  # a batch that skipped its optimizer step
        step = trainer.global_step
        if step == self._last_step:
            return  # gradient accumulation: no optimizer step in this batch
        self._last_step = step
        if self._deepr is not None:
            return  # DeepR calls update() right after its own removals
        if self.is_update_step(step) and self._grads:
            self.update(step, trainer.optimizers, pl_module)
        self._grads.clear()

    @torch.no_grad()
    def update(
        self,
        step: int,
        optimizers: Sequence[torch.optim.Optimizer] = (),
        pl_module: L.LightningModule | None = None,
    ) -> list[RewiringEvent]:
        """One RigL drop/regrow of every layer, with the recorded dense gradients.

        With a DeepR partner the regrown synapses are scored and signed as in
        :meth:`regrow` and their signs handed to DeepR.
        """
        fraction = cosine_drop_fraction(step, self.alpha, self.t_end)
        events = []
        for name, layer in self._layers:
            grad = self._grads.get(name)
            if grad is None:
                continue
            active = int(layer.mask.sum())
            count = min(round(fraction * active), layer.mask.numel() - active)
            drop = topk_select(layer.weight.abs(), layer.mask, count, largest=False)
            if self._deepr is None:
                grow = topk_select(grad.abs(), ~layer.mask, count, largest=True)
            else:
                grow, negative = self._signed_growth(layer, grad, ~layer.mask, count)
                self._deepr.set_signs(name, grow, negative)
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

    @staticmethod
    def _signed_growth(
        layer: SpatialDelay, grad: Tensor, candidates: Tensor, count: int
    ) -> tuple[Tensor, Tensor]:
        scores = grad.abs() if layer.sign is None else (-grad).clamp_min(0.0)
        grown = topk_select(scores, candidates, count, largest=True)
        negative = grown & (grad > 0) if layer.sign is None else torch.zeros_like(grown)
        return grown, negative

    def regrow(
        self, name: str, layer: SpatialDelay, candidates: Tensor, count: int
    ) -> tuple[Tensor, Tensor]:
        """Regrowth for DeepR: ``count`` candidates by dense gradient, and their signs.

        A synapse regrown at theta = 0 survives DEEP R's next sign check only if
        the optimizer moves theta up, so candidates are scored by what the
        gradient offers in an allowed direction: without Dale any sign is
        allowed (score |dL/dw|, and the new synapse takes the sign -sign(dL/dw)
        the loss asks for); under Dale the raw weight is theta >= 0 (score
        max(0, -dL/dw)).

        Returns:
            (grown, negative): bool masks of the regrown synapses and of those
            among them whose fixed sign is -1.
        """
        grad = self._grads.get(name)
        if grad is None:
            raise RuntimeError(
                f"RigL has no dense gradient for {name!r}; it records one at every step "
                "when DeepR is in the same trainer"
            )
        return self._signed_growth(layer, grad, candidates, count)
