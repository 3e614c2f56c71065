"""Lightning callbacks of spsnn, one module per callback.

Callbacks find the layers they edit with :func:`spatial_layers.delay_layers`
(or :func:`spatial_layers.sparsity.spatial_delay_layers` to select them by name)
and change them only through public attributes and methods (``sigma``, ``mask``,
``kernel_kind``, ...). Rewiring callbacks (:class:`DeepR`, :class:`RigL`)
derive from :class:`~lightning_modules.callbacks.rewiring.RewiringCallback`
and meet only through the shared state it sets up (``rewiring.py``); none
imports another. To add one, write ``callbacks/<name>.py`` and add its
import below.
"""

from lightning_modules.callbacks.dale import Dale
from lightning_modules.callbacks.deepr import DeepR
from lightning_modules.callbacks.hardware_qat import HardwareQAT
from lightning_modules.callbacks.last_checkpoint import LastCheckpoint
from lightning_modules.callbacks.layout_analysis import LayoutAnalysis
from lightning_modules.callbacks.layout_plots import LayoutPlots
from lightning_modules.callbacks.predictions import PredictionWriter
from lightning_modules.callbacks.rigl import RigL
from lightning_modules.callbacks.round_delays import RoundDelays
from lightning_modules.callbacks.run_summary import RunSummary
from lightning_modules.callbacks.sigma_annealing import SigmaAnnealing
from lightning_modules.callbacks.step_seed import StepSeed

__all__ = [
    "Dale",
    "DeepR",
    "HardwareQAT",
    "LastCheckpoint",
    "LayoutAnalysis",
    "LayoutPlots",
    "PredictionWriter",
    "RigL",
    "RoundDelays",
    "RunSummary",
    "SigmaAnnealing",
    "StepSeed",
]
