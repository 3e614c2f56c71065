"""The conventions an exported graph follows, as constants and pure conversions.

Shared by the writer (:mod:`~spatial_layers.nir.graph`) and the
reader (:mod:`~spatial_layers.nir.reader`); the strings also go
into every graph's metadata, so that a reader without spsnn knows them.
"""

from __future__ import annotations

RESET_CONVENTION = "subtract"
RESET_TIMING = "previous_step"
#: Reset timings a graph may state: one step after the spike (snnTorch's default, spsnn's
#: LIF and cuba by default) or in the step of the spike (NIR's own, Norse, Loihi 2, adlif).
RESET_TIMINGS = {"previous_step": True, "same_step": False}
#: Reset mechanisms a graph may state (snnTorch's ``reset_mechanism``).
RESETS = ("subtract", "zero", "none")
LIF_DYNAMICS = (
    "U_t = beta * U_{t-1} + I_t - threshold * H(U_{t-1} - threshold); "
    "S_t = H(U_t - threshold); beta = 1 - dt / tau, I_t = (r * dt / tau) * input_t"
    " (IF: beta = 1, I_t = r * dt * input_t); r = 1, the weights carry the gain"
)
CUBA_DYNAMICS = (
    "I_t = alpha * I_{t-1} + x_t; U_t = beta * U_{t-1} + I_t - reset_t; S_t = H(U_t - threshold)"
    " (reset one step late: reset_t from S_{t-1}; in the same step: S_t = H(v_t - threshold)"
    " on v_t = beta * U_{t-1} + I_t, then the reset); alpha = 1 - dt / tau_syn,"
    " beta = 1 - dt / tau_mem, x_t = (w_in * dt / tau_syn) * (r * dt / tau_mem) * input_t;"
    " w_in = r = 1, the weights carry the gain"
)
LI_DYNAMICS = (
    "U_t = beta * U_{t-1} + I_t; beta = 1 - dt / tau, I_t = (r * dt / tau) * input_t"
    " (I: beta = 1, I_t = r * dt * input_t); r = 1, the weights carry the gain"
)
DELAY_ROUNDING = "half up: floor(d) + (d - floor(d) >= 0.5), as spsnn's kernel='round'"
TIME_CONVENTION = (
    "discrete steps of dt; edges without a Delay node act within the step; "
    "Delay(k * dt) delivers at step t + k what it received at step t"
)
RECURRENT_CONVENTION = (
    "a hidden spike of j at step t reaches i at step t + 1 + d_ij; "
    "recurrent Delay nodes hold (d_ij + 1) * dt"
)


def membrane_tau(beta: float, dt: float) -> float:
    """NIR's ``tau = dt / (1 - beta)`` (seconds) for a decay ``beta`` per step of ``dt``.

    Euler with step ``dt`` then decays ``v`` by ``1 - dt / tau = beta`` per step.

    Example:
        >>> round(membrane_tau(0.75, 1e-3), 9)
        0.004
    """
    if not 0 < beta < 1:
        raise ValueError(f"a leaky neuron needs 0 < beta < 1, got {beta} (beta = 1: nir.IF)")
    return dt / (1 - beta)


def input_gain(beta: float, dt: float) -> float:
    r"""What NIR's Euler step multiplies a neuron's input by, with ``r = 1``.

    ``dt / tau = 1 - beta`` for LIF / LI, ``dt`` for IF / I (``beta = 1``).
    spsnn writes ``r = 1``, the convention of NIR's documentation (and of
    Norse's importer), so the graph's incoming weights are spsnn's divided by
    this gain: the Euler step ``v += dt / tau * (-v + r W' x)`` is then
    spsnn's ``v = beta v + W x``.

    Example:
        >>> round(input_gain(0.75, 1e-3), 12), input_gain(1.0, 1e-3)
        (0.25, 0.001)
    """
    if beta == 1:
        return dt
    return dt / membrane_tau(beta, dt)


def beta_from_tau(tau: float, dt: float) -> float:
    """Inverse of :func:`membrane_tau`: ``beta = 1 - dt / tau``."""
    return 1.0 - dt / tau


def reset_timing(reset_delay: bool) -> str:
    """The graph's name of a reset timing (:data:`RESET_TIMINGS`)."""
    return "previous_step" if reset_delay else "same_step"


#: How a graph's time constants are read: NIR's (seconds), or Norse's exporter, which
#: writes ``tau = dt / tau_inv`` (``dt`` times the time constant) and whose ``LIFCell``
#: (exported as ``CubaLIF``) adds its input to the current without a ``dt / tau_syn`` gain.
TIME_CONVENTIONS = ("nir", "norse")


def true_tau(tau: float, dt: float, convention: str) -> float:
    """A time constant in seconds from a graph's ``tau``: as written (``"nir"``), or
    Norse's ``dt / tau_inv`` divided by ``dt`` (``"norse"``).

    Example:
        >>> round(true_tau(1e-5, 1e-3, "norse"), 9)  # Norse's tau_mem_inv = 100 / s
        0.01
    """
    return tau / dt if convention == "norse" else tau
