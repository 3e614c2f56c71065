"""The comparison of saved settings on load: one error line naming every difference."""

from __future__ import annotations

import pytest

from spatial_layers import SpatialDelay
from spatial_layers.neurons import Leaky
from spatial_layers.saved_settings import refuse_other_settings, setting_differences


def test_every_difference_is_named_in_one_line_and_equal_settings_pass():
    errors: list[str] = []
    differences = setting_differences(
        {"max_delay": 4, "velocity": 1.0, "delays": "spatial"},
        {"max_delay": 6, "velocity": 2.0, "delays": "spatial"},
        "this layer",
    )
    assert refuse_other_settings(errors, "layers.0", "a layer", differences, "build it so")
    assert errors == [
        "layers.0: the state was saved by a layer with max_delay=4 (this layer: 6), "
        "velocity=1.0 (this layer: 2.0); build it so"
    ]
    assert not refuse_other_settings(errors, "layers.0", "a layer", [], "build it so")
    assert len(errors) == 1


@pytest.mark.parametrize(
    ("saved", "built", "message"),
    [
        (lambda: SpatialDelay(3, 2, 4), lambda: SpatialDelay(3, 2, 6),
         "SpatialDelay: the state was saved by a layer with max_delay=4 (this layer: 6)"),
        (lambda: Leaky(0.5), lambda: Leaky(0.7),
         "Leaky: the state was saved by neurons with beta=0.5 (these neurons: 0.7)"),
    ],
)  # fmt: skip
def test_a_module_refuses_a_state_of_other_settings(saved, built, message):
    with pytest.raises(RuntimeError) as refusal:
        built().load_state_dict(saved().state_dict())
    assert message in str(refusal.value)
