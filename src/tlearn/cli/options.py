"""Command-line options derived from the config's fields: one definition, one help text.

Every ``TrainConfig`` field becomes ``--field-name`` with the field's description as its help,
grouped in ``--help`` by the section the field declares. Values are validated by the config itself,
so a bad value gets the same message whether it came from a flag, a YAML file or a preset. An
optional field's flag also takes the field's reset word (``--train-size all``), parsed to ``RESET``.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional

import typer

from ..config import RESET, FreezeSpec, TrainConfig, field_section, option_flag, reset_word

# How a reset flag's help and error name the values it takes besides its reset word.
VALUE_FORMS = {int: ("<int>", "a whole number"), float: ("<float>", "a number"), str: ("<str>", "text")}


class FlagValueError(typer.BadParameter):
    """A flag's value is not one it takes; the message names the flag itself, so it is shown as it is."""

    def format_message(self) -> str:
        return self.message


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


def value_or_reset(option: str, kind: type, word: str) -> Callable[[str], Any]:
    """A parser for a flag that takes a ``kind`` value or ``word`` (which gives ``RESET``)."""

    def parse(text: str) -> Any:
        if text == word:
            return RESET
        try:
            return kind(text)
        except ValueError:
            raise FlagValueError(f"{option} takes {VALUE_FORMS[kind][1]} or '{word}', not '{text}'") from None

    return parse


def reset_option(option: str, kind: type, word: str, help: str) -> Any:
    """A command's own ``typer.Option`` that takes a ``kind`` value or ``word`` (``RESET``), default unset."""
    return typer.Option(
        None, option, metavar=f"{VALUE_FORMS[kind][0]}|{word}", parser=value_or_reset(option, kind, word), help=help
    )


def help_panel(name: str) -> str:
    """The ``--help`` section a field's flag is listed under (``Data options`` …)."""
    return f"{field_section(name).capitalize()} options"


def _option(name: str) -> tuple[Any, Any]:
    """The parsed type (Any for a value-or-reset flag) and the ``typer.Option`` of one config field."""
    field = TrainConfig.model_fields[name]
    kind, allowed, word = cli_type(field.annotation), choices(field.annotation), reset_word(name)
    common = {"show_default": False, "rich_help_panel": help_panel(name)}
    if word:
        helped = f"{field.description} '{word}' restores the default, over a preset or --config."
        metavar = f"{VALUE_FORMS[kind][0]}|{word}"
        return Any, typer.Option(
            flag(name), help=helped, metavar=metavar, parser=value_or_reset(flag(name), kind, word), **common
        )
    if kind is bool:
        return kind, typer.Option(f"{flag(name)}/--no-{name.replace('_', '-')}", help=field.description, **common)
    metavar = "[" + "|".join(str(c) for c in allowed) + "]" if allowed else None
    return kind, typer.Option(flag(name), help=field.description, metavar=metavar, **common)


def config_parameters(exclude: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One keyword parameter per config field (default None: "not given"), typed for typer."""
    params = []
    for name in TrainConfig.model_fields:
        if name in exclude:
            continue
        kind, option = _option(name)
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[kind], option]
            )
        )
    return params


def with_config_options(exclude: tuple[str, ...] = ()) -> Callable:
    """Decorate a command so that it also takes every config option (but ``exclude``).

    The command receives the given options as one dict, ``overrides``, holding only those the
    user gave (the rest stay out, so presets and config files fill them); a reset word arrives as
    ``RESET``, which puts the field back to its default over a preset or config file.
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
