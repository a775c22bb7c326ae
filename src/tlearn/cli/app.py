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
    """preset (or, without one, the defaults that suit the data) < config file < options.

    Prints the one line that says which data-aware defaults were chosen.
    """
    from ..data.profile import resolve_with_data_defaults

    config, profile = resolve_with_data_defaults(preset, config_file, overrides)
    if profile is not None:
        print(f"Data: {profile.summary} → defaults '{profile.preset}' (a --preset or flags override them)")
    return config
