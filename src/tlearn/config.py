"""The validated training configuration, YAML I/O and the shipped presets.

One pydantic model holds every option of a run. Flags, a YAML file (``--config``) and presets all
produce the same ``TrainConfig``; the resolved config is written to the run directory so that
``tlearn train --config RUN/config.yaml`` reproduces the run.
"""

from __future__ import annotations

import math
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

FREEZE_PATTERN = re.compile(r"^(backbone|none|until:[A-Za-z0-9_.]+)$")


class TrainConfig(BaseModel):
    """Every option of a training run. Field docs double as the YAML reference."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- data -----------------------------------------------------------------------------
    dataset: Literal["mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100", "svhn", "folder", "csv"] = "mnist"
    data_file: Optional[str] = Field(None, description="CSV with path,label columns (for --dataset csv).")
    data_dir: Optional[str] = Field(None, description="Dataset root; else $TLEARN_DATA_DIR, else a user cache dir.")
    train_size: Optional[int] = Field(1000, ge=1, description="Training images (stratified subset); null = all.")
    test_size: Optional[int] = Field(None, ge=1, description="Test images (stratified subset); null = full test set.")
    val_source: Literal["holdout", "test", "none"] = Field(
        "holdout",
        description="holdout: val images drawn from the unused training pool; test: validate on the test "
        "subset (what seed 000 did); none: no validation.",
    )
    val_size: int = Field(500, ge=1, description="Validation images when val_source is holdout.")
    in_chans: Literal[1, 3] = Field(3, description="3: replicate grey to RGB; 1: adapt the first convolution.")
    image_size: Optional[int] = Field(None, ge=8, le=1024, description="Input side in pixels; null = backbone default.")
    normalize: Literal["weights", "imagenet", "none"] = Field(
        "weights", description="weights: mean/std of the pretrained weights; none: plain [0, 1] scaling."
    )
    augment: Literal["none", "seed", "digits", "randaugment"] = "none"

    # --- model ----------------------------------------------------------------------------
    backbone: str = "efficientnet_lite0"
    weights: str = Field("imagenet", description="imagenet | none | path to a .safetensors/.pt state dict.")
    head: Literal["linear", "mlp"] = "linear"
    head_hidden: int = Field(256, ge=1, description="Hidden units of the mlp head.")
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    freeze: str = Field("none", description="backbone | none | until:<stage>")
    channels_last: bool = True
    compile: bool = Field(False, description="torch.compile the trained part (pays off only for long runs).")
    feature_cache: Literal["auto", "off"] = Field(
        "auto", description="auto: run the frozen part once and train on stored activations whenever that is exact."
    )
    cached_views: int = Field(0, ge=0, le=100, description="With augmentation and a frozen part: cache K augmented views per image (approximation).")
    cache_dir: Optional[str] = Field(None, description="Feature cache folder; default ~/.cache/tlearn/features.")

    # --- optimisation ---------------------------------------------------------------------
    epochs: int = Field(10, ge=1, le=10000)
    batch_size: int = Field(64, ge=1, le=65536, description="Images per optimiser step, in total over all DDP processes.")
    optimizer: Literal["adam", "adamw", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0.0, le=10.0)
    weight_decay: float = Field(0.01, ge=0.0, le=10.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    scheduler: Literal["none", "cosine", "onecycle"] = "cosine"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    tta: int = Field(1, ge=1, le=9, description="Test-time views averaged for the final test evaluation (1 = off; shifts by 1/28 of the side).")
    schedule: Literal["standard", "gradual"] = Field(
        "standard", description="gradual: backbone frozen for --unfreeze-at epochs, then trained with discriminative LRs."
    )
    unfreeze_at: int = Field(1, ge=1, description="gradual: epochs trained with the backbone frozen.")
    lr_ratio: float = Field(10.0, ge=1.0, le=1e4, description="gradual: head LR / LR of the earliest trained stage (geometric in between).")

    # --- execution ------------------------------------------------------------------------
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "64-true"] = "32-true"
    seed: int = Field(0, ge=0)
    devices: int = Field(1, ge=1, le=1024, description="Processes per machine (CPU) or GPUs per machine; more than 1 trains with DDP.")
    num_nodes: int = Field(1, ge=1, le=1024, description="Machines taking part (DDP across nodes, started by torchrun or SLURM).")
    strategy: Literal["auto", "ddp"] = Field(
        "auto", description="auto: one process, or DDP when devices x num_nodes > 1; ddp: DistributedDataParallel."
    )
    num_workers: Optional[int] = Field(
        None, ge=0, le=64,
        description="Data loader workers; null = auto: 0 (batches are sliced from memory and preprocessed "
        "in one batched call), or cores-1 (max 4) for per-sample RandAugment.",
    )
    out: Optional[str] = Field(None, description="Run directory; default runs/<timestamp>-<backbone>.")
    progress: bool = True
    description: str = ""

    @field_validator("freeze")
    @classmethod
    def _check_freeze(cls, value: str) -> str:
        if not FREEZE_PATTERN.match(value):
            raise ValueError("must be 'backbone', 'none' or 'until:<stage>'")
        return value

    @field_validator("lr", "weight_decay", "dropout", "label_smoothing", "momentum")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


def _format_validation_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "config"
    # Values given as flags are named as flags; values from files by their YAML key.
    name = f"--{where.replace('_', '-')}" if source == "option" else f"'{where}'"
    prefix = "" if source == "option" else f"{source}: "
    if first["type"] == "extra_forbidden":
        return f"{prefix}unknown option {name} (see 'tlearn train --help' for valid options)"
    value = first.get("input")
    shown = f" (got {value!r})" if value is not None and not isinstance(value, dict) else ""
    return f"{prefix}invalid value for {name}: {first['msg']}{shown}"


def make_config(values: dict[str, Any], source: str = "config") -> TrainConfig:
    """Build a validated config; raise ``ConfigError`` naming the first bad field."""
    try:
        return TrainConfig(**values)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


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


# --- presets --------------------------------------------------------------------------------


def preset_names() -> list[str]:
    """Names of the presets shipped in the package."""
    folder = resources.files("tlearn") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """The option mapping of a shipped preset (without its ``summary`` line)."""
    import yaml

    if name not in preset_names():
        raise ConfigError(f"unknown preset '{name}'; available: {', '.join(preset_names())}")
    text = (resources.files("tlearn") / "presets" / f"{name}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    data.pop("summary", None)
    return data


def preset_summaries() -> dict[str, str]:
    """One-line description of each preset, for ``tlearn presets``."""
    import yaml

    out = {}
    for name in preset_names():
        text = (resources.files("tlearn") / "presets" / f"{name}.yaml").read_text(encoding="utf-8")
        out[name] = str((yaml.safe_load(text) or {}).get("summary", ""))
    return out


def resolve_config(
    preset: Optional[str] = None,
    config_file: Optional[str | Path] = None,
    overrides: Optional[dict[str, Any]] = None,
) -> TrainConfig:
    """Merge preset < config file < explicit overrides into one validated config.

    A validation error names the layer the bad value came from (option, file or preset).
    """
    layers: list[tuple[str, dict[str, Any]]] = []
    if preset:
        layers.append((f"preset {preset}", load_preset(preset)))
    if config_file:
        layers.append((str(config_file), read_yaml(config_file)))
    if overrides:
        layers.append(("option", {k: v for k, v in overrides.items() if v is not None}))
    values: dict[str, Any] = {}
    for _, layer in layers:
        values.update(layer)
    try:
        return TrainConfig(**values)
    except ValidationError as err:
        key = str(err.errors()[0]["loc"][0]) if err.errors()[0]["loc"] else ""
        source = next((name for name, layer in reversed(layers) if key in layer), "config")
        raise ConfigError(_format_validation_error(err, source)) from None
