"""SigmaAnnealing: the schedules, and the sigmas every delay layer sees over a fit."""

from __future__ import annotations

import math

import lightning as L
import pytest

from lightning_modules.callbacks import SigmaAnnealing
from lightning_modules.callbacks.sigma_annealing import annealed_sigma
from lightning_modules.classifier import SpikingClassifier
from spatial_layers.networks import SpatialSNN
from tests.helpers.callbacks import loaders, trainer


def test_annealed_sigma_schedules():
    assert annealed_sigma(12.0, 0.5, 0.0, "exponential") == 12.0
    assert annealed_sigma(12.0, 0.5, 1.0, "exponential") == pytest.approx(0.5)
    assert annealed_sigma(12.0, 0.5, 0.5, "exponential") == pytest.approx(math.sqrt(6.0))
    assert annealed_sigma(12.0, 0.5, 7.0, "exponential") == pytest.approx(0.5)  # held after
    assert annealed_sigma(4.0, 1.0, 0.5, "linear") == 2.5
    assert annealed_sigma(4.0, 1.0, 0.5, "cosine") == pytest.approx(2.5)
    with pytest.raises(ValueError, match="schedule"):
        SigmaAnnealing(schedule="quadratic")
    with pytest.raises(ValueError, match="end"):
        SigmaAnnealing(end=0.0)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"start": True}, "start must be a positive finite number \\(steps\\), got True"),
        ({"end": True}, "end must be a positive finite number \\(steps\\), got True"),
        ({"fraction": True}, "fraction must be a number in \\(0, 1\\], got True"),
    ],
)
def test_a_bool_is_no_width_or_fraction(arguments, message):
    with pytest.raises(ValueError, match=message):
        SigmaAnnealing(**arguments)


@pytest.mark.parametrize("interval", ["step", "epoch"])
def test_sigma_annealing_over_a_fit(tmp_path, interval):
    model = SpikingClassifier(SpatialSNN(5, 3, [8], max_delay=12))
    seen = []

    class Spy(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            seen.append((trainer.global_step - 1, [lay.sigma for lay in pl_module.delay_layers()]))

    annealing = SigmaAnnealing(end=0.5, fraction=0.5, interval=interval)
    trainer(tmp_path, [annealing, Spy()]).fit(model, loaders())
    total_steps, steps_per_epoch = 16, 4
    for step, sigmas in seen:
        now, total = (step, total_steps) if interval == "step" else (step // steps_per_epoch, 4)
        expected = annealed_sigma(6.0, 0.5, now / (0.5 * total), "exponential")
        assert sigmas == [pytest.approx(expected)] * 2, step
    assert seen[0][1][0] == pytest.approx(6.0)  # max_delay / 2
    assert seen[-1][1][0] == pytest.approx(0.5)
    # every SpatialDelay of the model is reached
    assert len(seen[0][1]) == len(model.delay_layers()) == 2
