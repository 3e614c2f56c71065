"""torch.export, the supported path to a standalone program (with torch.compile: test_compile).

An exported SpatialSNN gives the eager network's numbers on inputs it was not traced
with; torch.jit.script, which cannot compile spsnn's layers, says which paths to take.
"""

from __future__ import annotations

import pytest
import torch

from spatial_layers.networks import SpatialSNN

CASES = {
    "spatial-gauss": dict(batch_norm=True),
    "free-round": dict(kernel="round", delays="free"),
    "recurrent": dict(recurrent=True),
    "spiking-output": dict(spiking_output=True, delays="none"),
}


@pytest.mark.parametrize("case", CASES)
def test_exported_network_equals_the_eager_one(case):
    torch.manual_seed(0)
    net = SpatialSNN(5, 3, [16], max_delay=4, init_gain=3.0, **CASES[case]).eval()
    traced_with, other = (torch.rand(2, 20, 2, 5) < 0.3).float()
    program = torch.export.export(net, (traced_with,)).module()
    for x in (traced_with, other):
        assert torch.equal(program(x), net(x))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_torch_jit_script_names_the_supported_paths():
    with pytest.raises(TypeError, match=r"torch\.compile.*torch\.export"):
        torch.jit.script(SpatialSNN(5, 3, [8], max_delay=3))
