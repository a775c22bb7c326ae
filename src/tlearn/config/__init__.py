"""The validated training configuration, YAML I/O and the shipped presets.

One pydantic model holds every option of a run. Flags, a YAML file (``--config``) and presets all
produce the same ``TrainConfig``; the resolved config is written to the run directory so that
``tlearn train --config RUN/config.yaml`` reproduces the run. Each field's description is also its
``--flag`` help in the CLI, so the two never disagree.

The modules: ``freeze`` (``FreezeSpec``), ``fields`` (sections, reset words, ``RESET``), ``model``
(``TrainConfig`` and its one-line errors), ``files`` (YAML), ``presets`` (presets and layering).
"""

from .fields import RESET, SECTIONS, DatasetName, LoggerNames, Reset
from .files import config_to_yaml, read_yaml
from .freeze import Freeze, FreezeSpec
from .model import TrainConfig, field_section, make_config, option_flag, reset_word, without_resets
from .presets import (
    for_another_backbone,
    given_values,
    load_preset,
    preset_names,
    preset_summaries,
    resolve_config,
)

__all__ = [
    "RESET",
    "SECTIONS",
    "DatasetName",
    "Freeze",
    "FreezeSpec",
    "LoggerNames",
    "Reset",
    "TrainConfig",
    "config_to_yaml",
    "field_section",
    "for_another_backbone",
    "given_values",
    "load_preset",
    "make_config",
    "option_flag",
    "preset_names",
    "preset_summaries",
    "read_yaml",
    "reset_word",
    "resolve_config",
    "without_resets",
]
