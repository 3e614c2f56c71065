"""What the rewiring callbacks (DEEP R, RigL) share: layers, masks, dense gradients, order.

A rewiring callback edits the masks of the ``SpatialDelay`` layers it selects
and keeps each layer's number of active synapses constant. This module is its
base class, :class:`RewiringCallback`, and the state that all of a trainer's
rewiring callbacks share, :class:`Rewiring`. Neither imports a concrete
callback: they meet only through the base class and two capabilities.

- **Layers and initial masks.** Every rewiring callback of a trainer must
  select the same layers with the same ``sparsity``, ``distribution`` and
  ``rescale`` (checked in ``setup``); the first one in the trainer's callback
  list draws the initial masks (:func:`~spatial_layers.sparsity.initialise_sparsity`,
  with its ``seed``).
- **Dense gradients.** A callback says per step whether it needs
  :math:`\\partial L/\\partial w` of dormant synapses
  (:meth:`RewiringCallback.needs_dense_gradient`); if any does, the masks are
  opened for that step and the gradients recorded after DDP's all-reduce
  (:class:`~spatial_layers.sparsity.DenseGradients`).
- **Fixed signs.** A callback with ``fixes_signs`` (DEEP R) gives every
  synapse a fixed sign; they live here (:meth:`Rewiring.signs`), so that a
  callback that grows synapses (RigL) can set the signs of the ones it grows.
- **Gradient regrowth.** A callback with ``regrows_by_gradient`` (RigL) makes
  the replacements of the others follow the dense gradient too
  (:attr:`Rewiring.gradient_regrowth`: DEEP R then regrows by gradient
  instead of at random).
- **Order.** After every optimizer step the callbacks rewire in the order of
  their ``order`` (DEEP R's removals, then RigL's periodic update), whatever
  their order in the callback list.

The shared hooks (opening and closing masks, the step) run in the first
rewiring callback of the list, so all rewiring is done before any later
callback looks at the masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from spatial_layers.delay import SpatialDelay
from spatial_layers.sparsity import (
    DenseGradients,
    RewiringEvent,
    SparsityDistribution,
    check_distribution,
    check_sparsity,
    initialise_sparsity,
    spatial_delay_layers,
)

__all__ = ["Rewiring", "RewiringCallback"]


class RewiringCallback(L.Callback):
    """Base of the callbacks that rewire ``SpatialDelay`` masks at a fixed number of synapses.

    Args:
        sparsity: fraction of absent synapses, in [0, 1); a layer whose mask
            holds another count than its target gets a random mask at fit start.
        seed: seeds the initial random masks (and the subclass's randomness).
        layers: ``fnmatch`` patterns on module names selecting the layers
            (e.g. ``["net.*"]``); None takes every ``SpatialDelay``.
        rescale: when the initial mask is drawn, scale kept weights by
            ``1/sqrt(density)`` to keep each neuron's input variance.
        distribution: how ``sparsity`` is spread over the layers: ``"uniform"``
            (every layer at ``sparsity``) or ``"erk"`` (Erdős–Rényi, RigL's
            default: ``sparsity`` over all layers together, small layers
            denser; see :func:`~spatial_layers.sparsity.layer_active_counts`).
            Either way each layer's count stays constant during training.

    Subclasses set ``order`` and the capabilities, implement
    :meth:`needs_dense_gradient` and :meth:`rewire_after_step`, and pass the
    options they share (``layers``, ``rescale``, ``distribution``) through
    ``**options``, which jsonargparse resolves, so that the CLI lists them.

    Attributes:
        last_events: :class:`~spatial_layers.sparsity.RewiringEvent` of the
            most recent update (one per layer).
        rewiring: the trainer's shared :class:`Rewiring` (set in ``setup``).
    """

    #: Position in the per-step order (lower rewires first).
    order: ClassVar[int] = 0
    #: Gives every synapse a fixed sign, kept in :meth:`Rewiring.signs` (DEEP R).
    fixes_signs: ClassVar[bool] = False
    #: Chooses regrowth by dense gradient; the others' replacements follow it (RigL).
    regrows_by_gradient: ClassVar[bool] = False

    def __init__(
        self,
        sparsity: float,
        seed: int,
        *,
        layers: list[str] | None = None,
        rescale: bool = False,
        distribution: SparsityDistribution = "uniform",
    ) -> None:
        super().__init__()
        self.sparsity = check_sparsity(sparsity)
        self.distribution = check_distribution(distribution)
        self.seed = int(seed)
        self.layers = list(layers) if layers is not None else None
        self.rescale = rescale
        self.last_events: list[RewiringEvent] = []
        self.rewiring: Rewiring | None = None

    @property
    def agreement(self) -> tuple:
        """What every rewiring callback of a trainer must share."""
        return (self.sparsity, self.distribution, self.layers, self.rescale)

    # ------------------------------------------------------------ subclass API
    def needs_dense_gradient(self, step: int) -> bool:
        """Whether the optimizer step that brings ``global_step`` to ``step`` must record
        dense gradients for this callback."""
        raise NotImplementedError

    def rewire_after_step(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """This callback's rewiring after an optimizer step (``trainer.global_step`` counts it)."""
        raise NotImplementedError

    def check_peers(self, callbacks: list[L.Callback]) -> None:
        """Refuses rewiring callbacks that cannot share the layers (:func:`check_members`)."""
        check_members([cb for cb in callbacks if isinstance(cb, RewiringCallback)])

    # ----------------------------------------------------------------- hooks
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        layers = spatial_delay_layers(pl_module, self.layers)
        if not layers:
            raise ValueError(
                f"{type(self).__name__} found no SpatialDelay layer matching {self.layers}"
            )
        members = [cb for cb in trainer.callbacks if isinstance(cb, RewiringCallback)]
        if members[0] is self:
            self.rewiring = Rewiring(members, layers)
            initialise_sparsity(
                layers,
                self.sparsity,
                self.seed,
                rescale=self.rescale,
                distribution=self.distribution,
            )
        else:  # Lightning calls setup in list order: the first member's group is fresh
            self.rewiring = members[0].rewiring
            if self.rewiring is None or self not in self.rewiring.members:
                raise RuntimeError(
                    f"set up {type(members[0]).__name__} before {type(self).__name__}: the "
                    "first rewiring callback of the trainer creates their shared state"
                )

    def _leads(self) -> bool:
        return self.rewiring is not None and self.rewiring.leader is self

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._leads():
            self.rewiring.last_step = trainer.global_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._leads() and self.rewiring.needs_dense_gradient(trainer.global_step + 1):
            self.rewiring.dense.open()

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self._leads():
            self.rewiring.dense.close(record=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._leads():
            self.rewiring.after_batch(trainer, pl_module)


def check_members(members: Sequence[RewiringCallback]) -> None:
    """Raises ValueError unless ``members`` (a trainer's rewiring callbacks) are one of each
    kind and agree on sparsity, distribution, layers and rescaling."""
    kinds = [type(member).__name__ for member in members]
    for kind in kinds:
        if kinds.count(kind) > 1:
            raise ValueError(f"use one {kind} callback per trainer")
    first = members[0] if members else None
    for member in members[1:]:
        if member.agreement != first.agreement:
            raise ValueError(
                f"{type(first).__name__} and {type(member).__name__} must rewire the same "
                f"layers at the same sparsity: (sparsity, distribution, layers, rescale) = "
                f"{first.agreement} and {member.agreement}"
            )


class Rewiring:
    """The rewiring callbacks of one trainer and what they share (see the module doc).

    Args:
        members: the trainer's rewiring callbacks, in callback-list order.
        layers: ``(name, layer)`` pairs they all rewire.

    Attributes:
        leader: the first member; it runs the shared hooks.
        members: the members in their per-step ``order``.
        layers: the shared layers.
        dense: the dense-gradient recorder of those layers.
        gradient_regrowth: a member regrows by dense gradient (replacements
            of every member then follow the gradient).
        sign_constrained: a member fixes per-synapse signs (growth must then
            respect them, see :func:`~spatial_layers.sparsity.signed_growth`).
        last_step: ``global_step`` after the last optimizer step seen.
    """

    def __init__(
        self, members: Sequence[RewiringCallback], layers: Sequence[tuple[str, SpatialDelay]]
    ) -> None:
        check_members(members)
        first = members[0]
        self.leader = first
        self.members = sorted(members, key=lambda member: member.order)
        self.layers = list(layers)
        self.dense = DenseGradients(self.layers)
        self.gradient_regrowth = any(member.regrows_by_gradient for member in members)
        self.sign_constrained = any(member.fixes_signs for member in members)
        self.last_step = 0
        self._negative: dict[str, Tensor] = {}
        if len(members) > 1:
            order = [type(member).__name__ for member in self.members]
            rank_zero_info(f"rewiring after every optimizer step, in this order: {order}")

    def needs_dense_gradient(self, step: int) -> bool:
        """Whether any member needs dense gradients from the step to ``step``."""
        return any(member.needs_dense_gradient(step) for member in self.members)

    def after_batch(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Closes masks a skipped optimizer step left open, then lets every member rewire."""
        self.dense.close(record=False)
        step = trainer.global_step
        if step == self.last_step:
            return  # gradient accumulation: no optimizer step in this batch
        self.last_step = step
        for member in self.members:
            member.rewire_after_step(trainer, pl_module)
        self.dense.clear()

    # ------------------------------------------------------------ fixed signs
    def signs(self, name: str) -> Tensor:
        """(C_out, C_in) fixed sign (+1/-1) of every synapse of layer ``name``."""
        return 1.0 - 2.0 * self._negative[name].float()

    def has_signs(self, name: str) -> bool:
        """Whether layer ``name``'s synapse signs are fixed yet."""
        return name in self._negative

    def fix_signs(self, name: str, negative: Tensor, where: Tensor | None = None) -> None:
        """Fixes the signs of layer ``name``'s synapses (``negative``: True for -1).

        Args:
            name: layer name.
            negative: (C_out, C_in) bool.
            where: (C_out, C_in) bool, the synapses to set; None sets them all.
        """
        if where is None:
            self._negative[name] = negative
        else:
            self._negative[name] = torch.where(where, negative, self._negative[name])

    def negative_signs(self) -> dict[str, Tensor]:
        """Layer name -> (C_out, C_in) bool, True where the fixed sign is -1."""
        return dict(self._negative)
