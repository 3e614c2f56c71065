"""Kernels, delay modes and layer twins of the SpatialDelay tests."""

from spatial_layers import SpatialDelay

KERNELS = ["gauss", "linear", "round"]
MODES = ["spatial", "free", "none"]


def twin(layer: SpatialDelay, **flags) -> SpatialDelay:
    """A layer with ``layer``'s parameters and buffers, built with other layout flags."""
    other = SpatialDelay(
        layer.in_features,
        layer.out_features,
        max_delay=layer.max_delay,
        kernel=layer.kernel_kind,
        delays=layer.delay_mode,
        bias=layer.bias is not None,
        **flags,
    )
    other.load_state_dict(layer.state_dict())
    return other
