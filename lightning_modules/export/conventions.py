"""The conventions an exported graph follows, as constants and pure conversions.

Shared by the writer (:mod:`~lightning_modules.export.nir_graph`) and the
reader (:mod:`~lightning_modules.export.nir_reader`); the strings also go
into every graph's metadata, so that a reader without spsnn knows them.
"""

from __future__ import annotations

#: Steps between a hidden spike and its arrival through a recurrent synapse of delay 0.
RECURRENT_LATENCY = 1
RESET_CONVENTION = "subtract"
RESET_TIMING = "previous_step"
LIF_DYNAMICS = (
    "U_t = beta * U_{t-1} + I_t - threshold * H(U_{t-1} - threshold); "
    "S_t = H(U_t - threshold); beta = 1 - dt / tau, I_t = (r * dt / tau) * input_t"
)
LI_DYNAMICS = "U_t = beta * U_{t-1} + I_t; beta = 1 - dt / tau, I_t = (r * dt / tau) * input_t"
DELAY_ROUNDING = "half up: floor(d) + (d - floor(d) >= 0.5), as spsnn's kernel='round'"
TIME_CONVENTION = (
    "discrete steps of dt; edges without a Delay node act within the step; "
    "Delay(k * dt) delivers at step t + k what it received at step t"
)
RECURRENT_CONVENTION = (
    "a hidden spike of j at step t reaches i at step t + 1 + d_ij; "
    "recurrent Delay nodes hold (d_ij + 1) * dt"
)


def lif_time_constants(beta: float, dt: float) -> tuple[float, float]:
    """NIR's (tau, r) for a discrete decay ``beta`` per step, Euler with step ``dt``.

    ``tau = dt / (1 - beta)`` (seconds) and ``r = tau / dt``, so that the
    Euler step ``v += dt / tau * (-v + r I)`` is ``v = beta v + I``.

    Example:
        >>> tau, r = lif_time_constants(0.75, 1e-3)
        >>> round(tau, 9), round(r, 9)
        (0.004, 4.0)
    """
    if not 0 < beta < 1:
        raise ValueError(f"a leaky neuron needs 0 < beta < 1, got {beta} (beta = 1: nir.IF)")
    tau = dt / (1 - beta)
    return tau, tau / dt


def beta_from_tau(tau: float, dt: float) -> float:
    """Inverse of :func:`lif_time_constants`: ``beta = 1 - dt / tau``."""
    return 1.0 - dt / tau
