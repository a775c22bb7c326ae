"""What library code tells the user while it works: one logger, ``tlearn``, on standard output.

Library modules report through :func:`say` (or ``logging.getLogger("tlearn")``), never a bare
``print``. By default the messages go to standard output, each as one plain line; replace or add
handlers on ``logging.getLogger("tlearn")`` to send them elsewhere, or raise its level to silence them.
"""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "tlearn"


class _StandardOutput(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the moment of the message (a redirected or captured
    standard output included), flushing each line."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # the stream is always the current standard output
        pass


def get_logger() -> logging.Logger:
    """The ``tlearn`` logger, with the standard-output handler on first use (unless one was set)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = _StandardOutput()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # one copy of each line, whatever the root logger does
    return logger


def say(message: str) -> None:
    """Tell the user ``message`` (one line, at INFO level)."""
    get_logger().info(message)
