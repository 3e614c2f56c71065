"""RoundDelays: train the last part of a run with integer delays and k-bit weights.

Hardware and the NIR export run every synapse at a whole number of time
steps. A network trained with Gaussian or linear kernels sees fractional
delays, so rounding them afterwards changes what it computes. From
``after`` x the run on, this callback switches every :class:`SpatialDelay`
to ``kernel="round"``: the forward pass uses round(d) (one tap, rounding
half up, exactly as evaluation and export round), and the straight-through
gradient keeps the coordinates learning. The network the run ends with is
then the network that gets deployed. With ``weight_bits``, the layers also
apply their weights quantised to k bits from then on (``SpatialDelay.weight_bits``,
straight-through), as ``spsnn export --weight-bits k`` quantises them.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

from lightning_modules.callbacks.late_switch import check_switch_fraction, switch_step
from lightning_modules.callbacks.single_instance import check_single_instance
from spatial_layers import SpatialDelay, delay_layers
from spatial_layers.quantization import weight_levels


class RoundDelays(Callback):
    """Switches every ``SpatialDelay`` to integer delays (and k-bit weights) late in training.

    Args:
        after: fraction of the planned optimizer steps
            (``trainer.estimated_stepping_batches``) after which the layers
            train with ``kernel="round"``, in [0, 1); 0 rounds from the start.
            Before that, layers keep the kernel (and ``weight_bits``) they had
            at fit start.
        weight_bits: None, or k >= 2: from ``after`` on, the layers also train
            with k-bit weights (symmetric per layer, straight-through).

    Put it after :class:`~lightning_modules.callbacks.SigmaAnnealing` in the
    callback list; sigma no longer matters once a layer rounds. Pair it with
    ``model.eval_kernel: round`` so that validation and test (also from a
    checkpoint) evaluate the integer-delay network.
    """

    def __init__(self, after: float = 0.75, weight_bits: int | None = None) -> None:
        self.after = check_switch_fraction(after)
        if weight_bits is not None:
            weight_levels(weight_bits)  # validates
        self.weight_bits = weight_bits
        self._trained_as: dict[SpatialDelay, tuple[str, int | None]] = {}

    def check_peers(self, callbacks: list[Callback]) -> None:
        """Refuses a second RoundDelays (:mod:`~lightning_modules.callbacks.single_instance`)."""
        check_single_instance(callbacks, self)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check_peers(trainer.callbacks)
        self._switch_step = switch_step(trainer, self.after, "RoundDelays")
        self._trained_as = {m: (m.kernel_kind, m.weight_bits) for m in delay_layers(pl_module)}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        rounding = trainer.global_step >= self._switch_step
        quantise = rounding and self.weight_bits is not None
        for layer, (kind, bits) in self._trained_as.items():
            layer.kernel_kind = "round" if rounding else kind
            layer.weight_bits = self.weight_bits if quantise else bits
