"""Lightning's log handlers in a test run.

Lightning adds a plain ``logging.StreamHandler`` to its loggers when first imported,
bound to the ``sys.stderr`` of that moment: inside a test that captures its output,
a stream closed when that test ends, after which every log line of a later test prints
a "Logging error" traceback to stderr (and fails the tests that check for one).
"""

from __future__ import annotations

import logging
import sys

LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")


def log_to_current_stderr() -> None:
    """Points the plain stream handlers of Lightning's loggers at the current stderr."""
    for name in LIGHTNING_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            # pytest's own handlers (subclasses) are left alone
            if type(handler) is logging.StreamHandler:
                handler.stream = sys.stderr  # setStream would flush the closed one
