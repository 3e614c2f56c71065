"""Where the non-finite input check runs: once per network input, not on hidden spikes;
a device flag inside torch.compile; nothing inside torch.export."""

from __future__ import annotations

import pytest
import torch

from spatial_layers import SpatialDelay, SpatialSNN, finite
from spatial_layers.finite import FLAG, NonFiniteInputError, raise_if_nonfinite


def test_a_network_checks_its_input_not_the_spikes_between_its_layers(monkeypatch):
    seen = []
    describe = finite.describe
    monkeypatch.setattr(finite, "describe", lambda x: seen.append(tuple(x.shape)) or describe(x))
    net = SpatialSNN(5, 3, [8, 6], max_delay=4, dropout=0.3)
    for mode in (net.train, net.eval):
        mode()
        seen.clear()
        net(torch.zeros(7, 2, 5))
        # The network and its first layer read the input; hidden spikes (0 or one level,
        # declared by binary_saves) are never checked.
        assert seen == [(7, 2, 5), (7, 2, 5)]
    with pytest.raises(NonFiniteInputError):
        net(torch.full((7, 2, 5), float("nan")))


def test_compiled_layers_record_non_finite_input_in_the_flag():
    layer = SpatialDelay(3, 2, max_delay=3)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    x = torch.zeros(5, 1, 3)
    compiled(x)
    raise_if_nonfinite(layer)  # nothing seen
    x[2, 0, 1] = float("inf")
    compiled(x)  # no host check inside the graph: recorded instead
    assert bool(getattr(layer, FLAG))
    with pytest.raises(NonFiniteInputError, match="NaN or Inf reached the input"):
        raise_if_nonfinite(layer)


def test_an_exported_layer_has_no_check_in_its_graph():
    layer = SpatialDelay(3, 2, max_delay=3).eval()
    program = torch.export.export(layer, (torch.zeros(5, 1, 3),))
    targets = {str(node.target) for node in program.graph.nodes}
    assert not any("isfinite" in t or "logical_or" in t for t in targets)
