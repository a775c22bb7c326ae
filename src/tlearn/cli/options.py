"""Command-line options derived from the config's fields: one definition, one help text.

Every ``TrainConfig`` field becomes ``--field-name`` with the field's description as its help,
grouped by section in ``--help``. Values are validated by the config itself, so a bad value gets
the same message whether it came from a flag, a YAML file or a preset.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional

import typer

from ..config import FreezeSpec, TrainConfig, option_flag

# The first field of each section of TrainConfig; --help groups the options under these titles.
SECTION_STARTS = {"dataset": "Data", "backbone": "Model", "epochs": "Optimisation", "device": "Execution"}


def flag(name: str) -> str:
    """The command-line flag of a config field (the config decides it: see ``option_flag``)."""
    return option_flag(name)


def cli_type(annotation: Any) -> type:
    """The type a field's flag parses: Optional stripped, choices as their base type, ``freeze`` and lists
    as text (a list is given comma-separated; the config splits it)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is list:
        return str
    if origin in (typing.Union, types.UnionType):
        return cli_type(args[0])
    if origin is Annotated:
        return cli_type(args[0])
    if origin is Literal:
        return type(args[0])
    if annotation is FreezeSpec:
        return str
    return annotation


def choices(annotation: Any) -> Optional[list]:
    """The allowed values of a Literal field (through Optional, Annotated and list), else None."""
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    if typing.get_origin(annotation) in (Annotated, list):
        return choices(typing.get_args(annotation)[0])
    inner = [a for a in typing.get_args(annotation) if a is not type(None)]
    return choices(inner[0]) if inner and typing.get_origin(annotation) in (typing.Union, types.UnionType) else None


def _sections() -> dict[str, str]:
    section, out = "Data", {}
    for name in TrainConfig.model_fields:
        section = SECTION_STARTS.get(name, section)
        out[name] = section
    return out


def config_parameters(exclude: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One keyword parameter per config field (default None: "not given"), typed for typer."""
    params, sections = [], _sections()
    for name, field in TrainConfig.model_fields.items():
        if name in exclude:
            continue
        kind = cli_type(field.annotation)
        allowed = choices(field.annotation)
        decls = [f"{flag(name)}/--no-{name.replace('_', '-')}"] if kind is bool else [flag(name)]
        option = typer.Option(
            *decls,
            help=field.description,
            show_default=False,
            metavar="[" + "|".join(str(c) for c in allowed) + "]" if allowed else None,
            rich_help_panel=f"{sections[name]} options",
        )
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[kind], option]
            )
        )
    return params


def with_config_options(exclude: tuple[str, ...] = ()) -> Callable:
    """Decorate a command so that it also takes every config option (but ``exclude``).

    The command receives the given options as one dict, ``overrides``, holding only those the
    user gave (the rest stay out, so presets and config files fill them).
    """

    def decorate(command: Callable) -> Callable:
        own = [p for p in inspect.signature(command).parameters.values() if p.name != "overrides"]
        config_names = [name for name in TrainConfig.model_fields if name not in exclude]

        @functools.wraps(command)
        def wrapper(**kwargs):
            overrides = {name: kwargs.pop(name) for name in config_names if kwargs.get(name) is not None}
            for name in config_names:
                kwargs.pop(name, None)
            return command(overrides=overrides, **kwargs)

        wrapper.__signature__ = inspect.Signature([*own, *config_parameters(exclude)])
        return wrapper

    return decorate
