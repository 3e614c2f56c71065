"""LayoutAnalysis: the cheap measures of the learned layout at the end of fit, into
``summary.json`` and the loggers (CSV, W&B).

:func:`spatial_layers.analysis.cheap_measures` of the classifier's network: wiring cost,
mean synapse length (plain and weighted by |w|), wiring efficiency, delay fractions at
0 and at ``max_delay``, the distance-weight correlation, and of the network's graph
the modularity of its Louvain communities, clustering, path length and global
efficiency; no null networks and no activity (``spsnn analyze`` adds those). On the
README's Yin-Yang network (5-128-3) they take about 0.1 s of CPU once, so ``spsnn
fit`` runs this callback in every fit (``--layout_analysis.enabled false`` turns it
off). Every metric is logged as ``analysis/<name>`` at the last step; with
``every_n_epochs`` also during training. :class:`RunSummary` puts the final values
into ``summary.json`` under ``"analysis"`` (its peers' :meth:`summary_fields`), and
with it into the W&B run's summary.
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn

from lightning_modules.callbacks.single_instance import check_single_instance
from spatial_layers.analysis import cheap_measures
from spatial_layers.networks import SpatialSNN


class LayoutAnalysis(Callback):
    """Logs :func:`~spatial_layers.analysis.cheap_measures` at the end of fit (and every N epochs).

    Args:
        enabled: compute anything at all.
        every_n_epochs: also log the measures every N epochs (None: only at the end).
        communities: include the Louvain modularity (the largest part of the cost).
        seed: seeds Louvain.

    Attributes:
        measures: the final measures, with ``seconds`` they took (None before the end
            of fit, or when the module has no SpatialSNN ``net``).
    """

    def __init__(
        self,
        enabled: bool = True,
        every_n_epochs: int | None = None,
        communities: bool = True,
        seed: int = 0,
    ) -> None:
        if every_n_epochs is not None and (
            isinstance(every_n_epochs, bool)
            or not isinstance(every_n_epochs, int)
            or every_n_epochs < 1
        ):
            raise ValueError(f"every_n_epochs must be an int >= 1 or None, got {every_n_epochs!r}")
        self.enabled = enabled
        self.every_n_epochs = every_n_epochs
        self.communities = communities
        self.seed = seed
        self.measures: dict[str, Any] | None = None
        self._warned = False

    def _compute(self, pl_module: L.LightningModule) -> dict[str, Any] | None:
        net = getattr(pl_module, "net", None)
        if not isinstance(net, SpatialSNN):
            if not self._warned:
                rank_zero_warn(
                    f"LayoutAnalysis measures a SpatialSNN at pl_module.net; "
                    f"{type(pl_module).__name__} has none: nothing is measured"
                )
                self._warned = True
            return None
        started = time.process_time()
        measures = cheap_measures(net, seed=self.seed, communities=self.communities)
        return measures | {"seconds": round(time.process_time() - started, 4)}

    @staticmethod
    def _log(trainer: L.Trainer, measures: dict[str, Any]) -> None:
        if not trainer.is_global_zero:
            return
        metrics = {f"analysis/{k}": float(v) for k, v in measures.items() if v is not None}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    def check_peers(self, callbacks: list[Callback]) -> None:
        """Refuses a second LayoutAnalysis (``spsnn fit`` always has one)."""
        check_single_instance(
            callbacks,
            self,
            "spsnn fit always runs one: set its arguments with --layout_analysis.<argument>",
        )

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.check_peers(trainer.callbacks)
            self.measures = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if not (self.enabled and self.every_n_epochs and epoch % self.every_n_epochs == 0):
            return
        if trainer.max_epochs is not None and epoch >= trainer.max_epochs:
            return  # on_train_end measures the last epoch
        measures = self._compute(pl_module)
        if measures is not None:
            self._log(trainer, measures)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled:
            return
        self.measures = self._compute(pl_module)
        if self.measures is not None:
            self._log(trainer, self.measures)

    def summary_fields(self) -> dict[str, Any]:
        """What ``summary.json`` gets from this callback: ``{"analysis": measures}`` (empty
        before the end of fit)."""
        return {} if self.measures is None else {"analysis": dict(self.measures)}
