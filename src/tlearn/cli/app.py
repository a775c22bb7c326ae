"""The typer application every command registers on, and the ``--debug`` switch."""

from __future__ import annotations

import os
from typing import Optional

import typer

app = typer.Typer(
    help="Transfer learning for image classification: fine-tune pretrained CNNs on your images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DEBUG = {"on": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    DEBUG["on"] = debug or os.environ.get("TLEARN_DEBUG", "") not in ("", "0")


def resolve_base_config(preset: Optional[str], config_file, overrides: dict):
    """preset < config file < options; with neither a preset nor a file, the ``default`` preset."""
    from ..config import resolve_config

    return resolve_config(preset if preset or config_file else "default", config_file, overrides)
