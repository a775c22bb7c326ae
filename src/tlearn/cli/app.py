"""The typer application every command registers on, the ``--debug`` switch, the base config of the
training commands (data-aware defaults layered under files and flags), and loading the stack."""

from __future__ import annotations

import gc
import importlib
import os
import sys
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


def resolve_with_data_defaults(preset: Optional[str], config_file, overrides: dict):
    """preset (or the data's own defaults) < config file < options: the config, and the data profile used
    (None with an explicit ``preset``, which is taken as it is).

    Without ``preset``, the data named by the options and file is detected and its preset is the
    base layer, adapted to another backbone when one is chosen; the profile's summary becomes the
    config's ``description`` unless one is given.
    """
    from ..config import for_another_backbone, given_values, resolve_config
    from ..data.profile import detect

    if preset:
        return resolve_config(preset, config_file, overrides), None
    given = given_values(config_file, overrides)
    profile = detect(given.get("data_dir"), given.get("data_file"), given.get("dataset"))
    base = {"dataset": profile.dataset, **profile.extra, **for_another_backbone(profile.preset, given)}
    if not given.get("description"):
        base["description"] = f"defaults '{profile.preset}' for {profile.summary}"
    return resolve_config(profile.preset, config_file, overrides, defaults=base), profile


def resolve_base_config(preset: Optional[str], config_file, overrides: dict):
    """preset (or, without one, the defaults that suit the data) < config file < options.

    Prints the one line that says which data-aware defaults were chosen.
    """
    config, profile = resolve_with_data_defaults(preset, config_file, overrides)
    if profile is not None:
        print(f"Data: {profile.summary} → defaults '{profile.preset}' (a --preset or flags override them)")
    return config


def load_stack(plots: bool = False) -> None:
    """Import torch, torchvision and timm (and matplotlib, for ``plots``) with Python's cyclic garbage
    collector paused, then freeze what they built; for the commands that need them.

    While their thousands of modules load, the collector walks every object made so far again and
    again, so pausing it makes those imports, and with them a short ``tlearn train``, markedly
    quicker (figures in docs/performance.md). The modules live until the process ends, so
    everything alive then goes to the permanent generation (``gc.freeze``) and later collections
    never walk it; the few thousand objects of import-time garbage it holds (collecting them first
    would cost time for little memory) stay with them. Then collection resumes for the command itself.
    A process that already has torch (a test session, a program calling :func:`main`) is left alone.
    """
    if "torch" in sys.modules:
        return
    collecting = gc.isenabled()
    gc.disable()
    try:
        for name in ("torch", "torchvision", "timm", *(["matplotlib.pyplot"] if plots else [])):
            importlib.import_module(name)
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
