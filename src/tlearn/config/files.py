"""Config files: reading a YAML mapping of options, writing a resolved config as YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .model import TrainConfig


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; malformed files and non-mappings raise ``ConfigError``."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        at = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(f"{path}: malformed YAML{at}; fix the syntax or regenerate it") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value, got {type(data).__name__}")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:  # e.g. a bare "?" or "1: x" gives keys that are not option names
        raise ConfigError(f"{path}: option names must be text, got {bad[0]!r}")
    return data


def config_to_yaml(config: TrainConfig) -> str:
    """Serialise a config to YAML (keys in declaration order)."""
    import yaml

    return yaml.safe_dump(config.model_dump(), sort_keys=False)
