"""Whether the ``spsnn`` command shows tracebacks: ``--debug`` on its command line or
``SPSNN_DEBUG=1``. Otherwise every error is one line (:func:`lightning_modules.cli.main`)."""

from __future__ import annotations

import os

#: Shows the traceback of any error (or ``--debug`` anywhere on the command line).
DEBUG_VARIABLE = "SPSNN_DEBUG"
#: Values of :data:`DEBUG_VARIABLE` that turn tracebacks on and off (in lower case).
DEBUG_ON = ("1", "true", "yes", "on")
DEBUG_OFF = ("", "0", "false", "no", "off")

#: ``--debug`` was on the command line (:func:`set_debug_flag`).
_flag = False


def set_debug_flag(on: bool) -> None:
    """Records whether ``--debug`` was on the command line."""
    global _flag
    _flag = on


def debug_requested() -> bool:
    """Whether the command shows tracebacks (and jsonargparse's whole message): ``--debug``
    or :data:`DEBUG_VARIABLE` set to one of :data:`DEBUG_ON`. Another value of the variable
    is a ValueError naming it (``SPSNN_DEBUG=false`` used to turn tracebacks on)."""
    value = os.environ.get(DEBUG_VARIABLE, "").strip().lower()
    if value not in DEBUG_ON + DEBUG_OFF:
        raise ValueError(
            f"{DEBUG_VARIABLE}={os.environ[DEBUG_VARIABLE]}: give {DEBUG_VARIABLE}=1 to see "
            f"tracebacks, or 0 (or unset it) for one-line errors"
        )
    return _flag or value in DEBUG_ON
