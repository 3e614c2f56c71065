"""Constant tensors cached per shape, dtype and device (DFT matrices, tap indices)."""

from __future__ import annotations

import torch

from spatial_layers import constants
from spatial_layers.functional import _build_dft, _dft_matrices, delayed_linear
from spatial_layers.kernels import _tap_range


def test_an_entry_is_made_once_per_key_dtype_and_device():
    constants.clear()
    x32, x64 = torch.zeros(2), torch.zeros(2, dtype=torch.float64)
    first = _dft_matrices(10, 4, 16, x32)
    assert all(a is b for a, b in zip(first, _dft_matrices(10, 4, 16, x32), strict=True))
    # Another dtype, another shape: another entry (never a stale one after .to()).
    other = _dft_matrices(10, 4, 16, x64)
    assert other[0].dtype == torch.float64 and other[0] is not first[0]
    assert _dft_matrices(11, 4, 16, x32)[0].shape == (2 * 9, 11)
    for got, want in zip(first, _build_dft(10, 4, 16, x32), strict=True):
        assert torch.equal(got, want)


def test_entries_made_in_inference_mode_serve_autograd_later():
    constants.clear()
    kernel = torch.randn(3, 2, 5)
    with torch.inference_mode():
        delayed_linear(torch.ones(12, 1, 2), kernel, method="dft")
    x = torch.ones(12, 1, 2, requires_grad=True)
    delayed_linear(x, kernel, method="dft").sum().backward()  # saves the cached matrices
    assert x.grad is not None


def test_nothing_is_cached_for_meta_fake_or_wrapped_tensors():
    constants.clear()
    _tap_range(0, 5, torch.zeros(1, device="meta"))
    torch.func.vmap(lambda t: _tap_range(0, 5, t))(torch.zeros(3, 1))
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        _tap_range(0, 5, torch.zeros(1))
    assert not constants._ENTRIES


def test_the_cache_is_bounded():
    constants.clear()
    x = torch.zeros(1)
    for stop in range(constants.MAX_ENTRIES + 10):
        _tap_range(0, stop, x)
    assert len(constants._ENTRIES) == constants.MAX_ENTRIES
    # The most recent entries are the ones kept.
    assert ("taps", 0, constants.MAX_ENTRIES + 9, torch.float32, x.device) in constants._ENTRIES


def test_nothing_is_cached_while_compiling():
    constants.clear()

    @torch.compile(backend="aot_eager", fullgraph=True)
    def taps(x):
        return _tap_range(0, 7, x) * x

    torch.testing.assert_close(taps(torch.ones(7)), torch.arange(7.0))
    assert not constants._ENTRIES
