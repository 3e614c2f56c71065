"""One callback of a kind per trainer: a second one is refused, naming it."""

from __future__ import annotations

import pytest

from lightning_modules.callbacks import HardwareQAT, RoundDelays, SigmaAnnealing, StepSeed
from lightning_modules.classifier import SpikingClassifier
from spatial_layers.networks import SpatialSNN
from tests.helpers.callbacks import loaders, trainer


@pytest.mark.parametrize(
    "make",
    [SigmaAnnealing, lambda: RoundDelays(after=0.5), lambda: HardwareQAT(after=0.5), StepSeed],
)
def test_a_second_callback_of_a_kind_is_refused_naming_it(tmp_path, make):
    first, second = make(), make()
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=6, beta=0.95))
    name = type(first).__name__
    with pytest.raises(ValueError, match=rf"2 {name} callbacks .* silently override"):
        trainer(tmp_path, [first, second]).fit(model, loaders())
    trainer(tmp_path, [first], max_epochs=1).fit(model, loaders())  # one alone fits
