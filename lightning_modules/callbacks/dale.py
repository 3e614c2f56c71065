"""Dale's principle: every presynaptic neuron is either excitatory or inhibitory.

The callback gives each presynaptic population a fixed random split
(``excitatory_fraction`` of +1, the rest -1, exact count) and stores it in the
layers' ``sign`` buffers at fit start (``setup``, so that DDP wraps the model
with the buffer in place and a resumed checkpoint's signs overwrite the fresh
draw). From then on ``SpatialDelay.effective_weight()`` is ``sign * |w|``: a
reparametrisation rather than a projection, so no optimizer step, rewiring
or noise can ever give a synapse the wrong sign.

A neuron keeps one sign for all its outgoing synapses: spatial layers that
share a presynaptic :class:`~spatial_layers.NeuronPositions` module (e.g. a
hidden population's recurrent and feed-forward outputs) get the same draw.
Layers in ``free``/``none`` delay modes do not know their population, so each
such layer gets its own draw.
"""

from __future__ import annotations

import lightning as L

from spatial_layers.delay import SpatialDelay
from spatial_layers.sparsity import (
    assign_dale_signs,
    check_fraction,
    spatial_delay_layers,
    step_generator,
)

__all__ = ["Dale"]


class Dale(L.Callback):
    """Assigns E/I signs to presynaptic neurons at fit start.

    Args:
        excitatory_fraction: fraction of excitatory presynaptic neurons, (0, 1].
        seed: seeds the split.
        layers: ``fnmatch`` patterns on module names selecting the layers;
            None takes every ``SpatialDelay``.

    Layers that already have a ``sign`` keep it.
    """

    def __init__(
        self, excitatory_fraction: float = 0.8, seed: int = 0, *, layers: list[str] | None = None
    ) -> None:
        super().__init__()
        self.excitatory_fraction = check_fraction("excitatory_fraction", excitatory_fraction)
        if self.excitatory_fraction == 0:
            raise ValueError(
                "excitatory_fraction=0 makes every synapse inhibitory: no neuron could ever "
                "spike; give a fraction in (0, 1] (Dale's usual 0.8)"
            )
        self.seed = int(seed)
        self.layers = list(layers) if layers is not None else None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        layers = spatial_delay_layers(pl_module, self.layers)
        if not layers:
            raise ValueError(f"Dale found no SpatialDelay layer matching {self.layers}")
        populations: dict[int, int] = {}
        for _, layer in layers:
            if layer.sign is not None:
                continue
            key = id(layer.pre) if layer.delay_mode == "spatial" else id(layer)
            group = populations.setdefault(key, len(populations))
            self.assign(layer, group)

    def assign(self, layer: SpatialDelay, group: int) -> None:
        """Draws the signs of population ``group`` (the same draw for every layer in it)."""
        generator = step_generator(self.seed, group)
        assign_dale_signs(layer, self.excitatory_fraction, generator)
