"""The error hierarchy and the one-line rendering of any exception."""

from tlearn.errors import ConfigError, DataError, RunError, TlearnError, TrainingInterrupted, WeightsError, one_line


def test_user_errors_share_one_base_and_exit_codes():
    for cls in (ConfigError, DataError, RunError, WeightsError):
        assert issubclass(cls, TlearnError) and cls.exit_code == 2
    assert TrainingInterrupted.exit_code == 130


def test_one_line_takes_the_first_line_or_the_type():
    assert one_line(ValueError("first\nsecond")) == "first"
    assert one_line(KeyError()) == "KeyError"
    assert one_line(OSError("x" * 300), limit=10) == "x" * 9 + "…"
