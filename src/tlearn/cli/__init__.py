"""The ``tlearn`` command line (entry point ``tlearn.cli:main``)."""

from .app import app
from .main import main

__all__ = ["app", "main"]
