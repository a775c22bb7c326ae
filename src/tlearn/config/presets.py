"""The shipped presets, and layering presets, data defaults, config files and flags into one config."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Optional

from pydantic import ValidationError

from ..errors import ConfigError
from .files import read_yaml
from .model import TrainConfig, format_validation_error, without_resets


def preset_names() -> list[str]:
    """Names of the presets shipped in the package."""
    folder = resources.files("tlearn") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _preset_mapping(name: str) -> dict[str, Any]:
    import yaml

    if name not in preset_names():
        raise ConfigError(f"unknown preset '{name}'; available: {', '.join(preset_names())}")
    text = (resources.files("tlearn") / "presets" / f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


def load_preset(name: str) -> dict[str, Any]:
    """The option mapping of a shipped preset (without its ``summary`` line)."""
    data = _preset_mapping(name)
    data.pop("summary", None)
    return data


def preset_summaries() -> dict[str, str]:
    """One-line description of each preset, for ``tlearn presets``."""
    return {name: str(_preset_mapping(name).get("summary", "")) for name in preset_names()}


def for_another_backbone(preset: str, given: dict[str, Any]) -> dict[str, Any]:
    """What changes in ``preset`` when ``given`` (file and flag values) picks another backbone.

    A preset's image size and ``until:<stage>`` freezing belong to its own backbone: with another one
    chosen, that model's native size and a frozen backbone (a linear head, valid for any model) instead,
    unless ``given`` sets them.
    """
    values = load_preset(preset)
    if given.get("backbone", values.get("backbone")) == values.get("backbone"):
        return {}
    adapted: dict[str, Any] = {} if "image_size" in given else {"image_size": None}
    if str(values.get("freeze", "none")).startswith("until:") and "freeze" not in given:
        adapted["freeze"] = "backbone"
    return adapted


def given_values(config_file: Optional[str | Path], overrides: dict[str, Any]) -> dict[str, Any]:
    """The values a config file and options set, options over the file (``None``: not given; a
    :data:`RESET` counts as given, with its field's default)."""
    file_values = read_yaml(config_file) if config_file else {}
    return without_resets({**file_values, **{k: v for k, v in overrides.items() if v is not None}})


def resolve_config(
    preset: Optional[str] = None,
    config_file: Optional[str | Path] = None,
    overrides: Optional[dict[str, Any]] = None,
    defaults: Optional[dict[str, Any]] = None,
) -> TrainConfig:
    """Merge preset < defaults < config file < explicit overrides into one validated config.

    ``defaults`` are values chosen for the data (null values count there). In ``overrides``,
    ``None`` means "not given" and :data:`RESET` puts the field back to its default (``None`` for
    the optional ones), whatever the layers below set: ``{"train_size": RESET}`` trains on every
    image even with a preset of 1,000. A validation error names the layer the bad value came from.
    """
    layers: list[tuple[str, dict[str, Any]]] = []
    if preset:
        layers.append((f"preset {preset}", load_preset(preset)))
    if defaults:
        layers.append(("data defaults", defaults))
    if config_file:
        layers.append((str(config_file), read_yaml(config_file)))
    if overrides:
        given = without_resets({k: v for k, v in overrides.items() if v is not None})
        layers.append(("option", given))
    values: dict[str, Any] = {}
    for _, layer in layers:
        values.update(layer)
    try:
        return TrainConfig(**values)
    except ValidationError as err:
        key = str(err.errors()[0]["loc"][0]) if err.errors()[0]["loc"] else ""
        source = next((name for name, layer in reversed(layers) if key in layer), "config")
        raise ConfigError(format_validation_error(err, source)) from None
