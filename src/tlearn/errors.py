"""Every error tlearn raises on purpose, and the one way to show an exception on one line.

Every problem a user can cause (a bad path, option or file, missing weights) raises a
``TlearnError`` subclass whose message says what is wrong and what to do. The CLI is the single
place that turns them into one line on stderr and an exit code; ``--debug`` shows the traceback.
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


class RunError(TlearnError):
    """A run directory is missing, unfinished, damaged or cannot be written."""


class NonFiniteLossError(TlearnError):
    """The loss became NaN or infinite; training stops and the last good checkpoint is kept."""


class TrainingInterrupted(TlearnError):
    """Ctrl-C during training: the last finished epoch is saved and can be resumed."""

    exit_code = 130


def one_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when it has none), at most ``limit`` characters."""
    text = str(err).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    return first if len(first) <= limit else first[: limit - 1] + "…"
