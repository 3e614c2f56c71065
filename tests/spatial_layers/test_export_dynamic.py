"""torch.export with a dynamic T and B: one program for every sequence length and batch
size, equal to the eager module on shapes it was not traced with.

A symbolic T makes the layer build its whole kernel (taps >= T meet only zeros) and the
delayed linear map take the dense path (the spectral ones size their transforms by T
and B, and refuse a symbolic one by name).
"""

from __future__ import annotations

import pytest
import torch
from torch.export import Dim

from spatial_layers import SpatialDelay, SpatialSNN

# (T, B) the program is traced with, then two others: T below and above max_delay + 1.
TRACED = (12, 5)
OTHERS = ((2, 1), (3, 4), (40, 3))


def dynamic(time_dim: int = 0, batch_dim: int = 1) -> tuple[dict, ...]:
    return ({time_dim: Dim("T", min=2), batch_dim: Dim("B")},)


def export_and_compare(module, channels: int, time_dim: int = 0) -> None:
    """Equal to float rounding: below max_delay + 1 steps the program's kernel has more
    (zero) taps than eager's, and eager may take a spectral path."""

    def sequence(steps, batch):
        shape = [0, 0, channels]
        shape[time_dim], shape[1 - time_dim] = steps, batch
        return (torch.rand(*shape) < 0.4).float()

    module.eval()
    program = torch.export.export(
        module, (sequence(*TRACED),), dynamic_shapes=dynamic(time_dim, 1 - time_dim)
    )
    run = program.module()
    for steps, batch in OTHERS:
        x = sequence(steps, batch)
        got, want = run(x), module(x)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "options",
    [
        {"kernel": "gauss"},
        {"kernel": "linear"},
        {"kernel": "round", "delays": "free"},
        {"delays": "none", "max_delay": 0},
        {"kernel": "gauss", "bias": True, "method": "dense"},
    ],
)
def test_a_layer_exports_with_dynamic_time_and_batch(options):
    torch.manual_seed(0)
    options = {"max_delay": 6, **options}
    export_and_compare(SpatialDelay(4, 3, **options), 4)


def test_a_spectral_method_refuses_a_symbolic_shape_by_name():
    layer = SpatialDelay(4, 3, max_delay=6, method="fft").eval()
    with pytest.raises(ValueError, match=r"method 'fft'.*symbolic.*method='auto' or 'dense'"):
        torch.export.export(layer, (torch.zeros(*TRACED, 4),), dynamic_shapes=dynamic())


CASES = {
    "spatial-gauss-batch-norm": dict(batch_norm=True),
    "free-round": dict(kernel="round", delays="free"),
    "recurrent": dict(recurrent=True),
    "spiking-output": dict(spiking_output=True, delays="none"),
    "two-layers-linear": dict(hidden_sizes=[8, 6], kernel="linear", bias=True),
}


@pytest.mark.parametrize("case", CASES)
def test_a_network_exports_with_dynamic_time_and_batch(case):
    torch.manual_seed(0)
    options = {"hidden_sizes": [16], **CASES[case]}
    net = SpatialSNN(5, 3, max_delay=4, init_gain=3.0, backend="torch", **options)
    export_and_compare(net, 5)


def test_a_batch_first_network_exports_with_dynamic_time_and_batch():
    torch.manual_seed(0)
    net = SpatialSNN(5, 3, [16], max_delay=4, init_gain=3.0, backend="torch", batch_first=True)
    export_and_compare(net, 5, time_dim=1)
