"""User-facing errors.

Every problem a user can cause (bad path, bad option, missing weights) raises ``TlearnError``
with a message that says what is wrong and what to do. The CLI prints it on one line and exits
with code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations


class TlearnError(Exception):
    """An error caused by user input, reported as one line without a traceback."""

    exit_code = 2


class DataError(TlearnError):
    """The dataset is missing, unreadable or inconsistent."""


class WeightsError(TlearnError):
    """Pretrained weights cannot be found, loaded or matched to the model."""


class ConfigError(TlearnError):
    """An option or config file value is invalid."""
