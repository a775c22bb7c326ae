"""The ``tlearn`` command line (console script ``tlearn.cli.main:entry_point``, which wraps ``main``)."""

from .app import app
from .main import main

__all__ = ["app", "main"]
