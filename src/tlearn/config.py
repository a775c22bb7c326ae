"""The validated training configuration, YAML I/O and the shipped presets.

One pydantic model holds every option of a run. Flags, a YAML file (``--config``) and presets all
produce the same ``TrainConfig``; the resolved config is written to the run directory so that
``tlearn train --config RUN/config.yaml`` reproduces the run. Each field's description is also its
``--flag`` help in the CLI, so the two never disagree.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError

_FREEZE_PATTERN = re.compile(r"^(backbone|none|until:[A-Za-z0-9_.]+)$")


@dataclass(frozen=True)
class FreezeSpec:
    """``--freeze`` parsed once: train everything, freeze the whole backbone, or freeze the stem up to a stage."""

    kind: Literal["none", "backbone", "until"]
    stage: Optional[str] = None

    @classmethod
    def parse(cls, text: Any) -> FreezeSpec:
        if isinstance(text, FreezeSpec):
            return text
        if not isinstance(text, str) or not _FREEZE_PATTERN.match(text):
            raise ValueError("must be 'backbone', 'none' or 'until:<stage>'")
        kind, _, stage = text.partition(":")
        return cls(kind, stage or None)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"until:{self.stage}" if self.kind == "until" else self.kind

    @property
    def any(self) -> bool:
        """True when some part of the backbone is frozen."""
        return self.kind != "none"


Freeze = Annotated[FreezeSpec, BeforeValidator(FreezeSpec.parse), PlainSerializer(str, return_type=str)]
DatasetName = Literal["mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100", "svhn", "folder", "csv"]


def _split_names(value: Any) -> Any:
    """``"tensorboard,mlflow"`` (a flag) or a YAML list, as a list without blanks or repeats."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        return value  # pydantic reports the wrong type
    return list(dict.fromkeys(str(v).strip() for v in items if str(v).strip()))


LoggerNames = Annotated[list[Literal["csv", "tensorboard", "mlflow"]], BeforeValidator(_split_names)]


class TrainConfig(BaseModel):
    """Every option of a training run. Field descriptions double as the CLI help and the YAML reference."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- data -----------------------------------------------------------------------------
    dataset: DatasetName = Field(
        "mnist",
        description="A built-in dataset, folder (train/<class>/ images, optional val/, test/) or csv (--data-file).",
    )
    data_file: Optional[str] = Field(None, description="CSV file with path,label columns (for --dataset csv).")
    data_dir: Optional[str] = Field(
        None, description="Dataset root (else $TLEARN_DATA_DIR, else ~/.cache/tlearn/datasets)."
    )
    train_size: Optional[int] = Field(
        None, ge=1, description="Training images, a seeded class-stratified subset (default: all)."
    )
    test_size: Optional[int] = Field(None, ge=1, description="Test images, a seeded stratified subset (default: all).")
    val_source: Literal["holdout", "test", "none"] = Field(
        "holdout",
        description="Where per-epoch validation images come from: holdout (unused training images), "
        "test (the test subset, as seed 000 did) or none.",
    )
    val_size: int = Field(500, ge=1, description="Validation images for --val-source holdout.")
    in_chans: Literal[1, 3] = Field(
        3, description="Model input channels: 3 (grey replicated to RGB) or 1 (first convolution adapted)."
    )
    image_size: Optional[int] = Field(
        None, ge=8, le=1024, description="Input side in pixels (default: the backbone's native size)."
    )
    resize_from: Optional[int] = Field(
        None, ge=8, le=1024, description="First epoch's side for progressive resizing (reaches --image-size mid-run)."
    )
    normalize: Literal["weights", "imagenet", "none"] = Field(
        "weights", description="Input mean/std: the pretrained weights' own, ImageNet's, or none ([0, 1] scaling)."
    )
    eval_crop: Literal["auto", "centre", "none"] = Field(
        "auto",
        description="Evaluation view: centre (resize the short side to size / the backbone's crop fraction, "
        "then centre-crop; ImageNet-style), none (resize the whole image), auto: centre for folders and CSV "
        "files, none for the built-in sets.",
    )
    augment: Literal["none", "seed", "digits", "photo", "randaugment"] = Field(
        "none",
        description="Training augmentation: seed (seed 000's shear/zoom/flip), digits (small shifts, "
        "rotations, scaling), photo (random resized crop, horizontal flip), randaugment or none.",
    )

    # --- model ----------------------------------------------------------------------------
    backbone: str = Field(
        "efficientnet_lite0",
        description="efficientnet_lite0 | any torchvision CNN (resnet50, vgg16 …) | timm/<name> | "
        "local-dir:DIR or hf-hub:ORG/NAME (a timm model folder, e.g. from tlearn export --format timm).",
    )
    weights: str = Field(
        "imagenet",
        description="imagenet (for a model folder: its own weights) | none (random init) | "
        "PATH to a .safetensors/.pt state dict.",
    )
    head: Literal["linear", "mlp"] = Field(
        "linear", description="linear: pool, dropout, linear; mlp: seed 000's Flatten-Dense-Dropout-Dense."
    )
    head_hidden: int = Field(256, ge=1, description="Hidden units of the mlp head.")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="Dropout before the linear head.")
    freeze: Freeze = Field(
        FreezeSpec("none"), description="backbone | none | until:<stage> (the stem up to and including that stage)."
    )
    channels_last: bool = Field(True, description="channels_last memory format (faster convolutions on CPU and GPU).")
    compile: bool = Field(False, description="torch.compile the trained part (pays off only for long runs).")
    feature_cache: Literal["auto", "off"] = Field(
        "auto", description="auto: train on cached activations of the frozen part whenever that is exact."
    )
    cached_views: int = Field(
        0,
        ge=0,
        le=100,
        description="With augmentation and a frozen part: cache K augmented views per image (an approximation).",
    )
    cache_dir: Optional[str] = Field(None, description="Feature cache folder (default ~/.cache/tlearn/features).")

    # --- optimisation ---------------------------------------------------------------------
    epochs: int = Field(10, ge=1, le=10000, description="Training epochs.")
    batch_size: int = Field(
        64, ge=1, le=65536, description="Images per optimiser step, in total over all DDP processes."
    )
    optimizer: Literal["adam", "adamw", "sgd"] = Field("adamw", description="Optimiser (sgd uses --momentum).")
    lr: float = Field(1e-3, gt=0.0, le=10.0, description="Learning rate.")
    weight_decay: float = Field(0.01, ge=0.0, le=10.0, description="Weight decay (not applied to biases and norms).")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum.")
    scheduler: Literal["none", "cosine", "onecycle"] = Field(
        "cosine", description="LR schedule: cosine (5 % linear warm-up, then cosine decay), onecycle or none; per step."
    )
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="Label smoothing of the training loss.")
    ema: Optional[float] = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="Keep an exponential moving average of the weights with this decay (e.g. 0.99) and use it "
        "as the model (then --keep applies to nothing: the average is kept).",
    )
    time_budget: Optional[float] = Field(
        None,
        ge=5.0,
        le=1e6,
        description="Seconds the whole run may take, from the start of the command to finished outputs: the "
        "epochs (and so the LR schedule) are fitted to it from the measured speed of the first steps and again "
        "after every epoch; if too few fit, the high-resolution stages are frozen, then a smaller image size is used.",
    )
    keep: Literal["best", "last"] = Field(
        "best",
        description="Which epoch's weights the run saves, evaluates and exports: best (lowest validation loss; "
        "needs validation images, else the last epoch is kept) or last.",
    )
    early_stopping: Optional[int] = Field(
        None, ge=1, description="Stop after N epochs without a lower validation loss (needs validation images)."
    )
    class_weights: Literal["none", "auto"] = Field(
        "none", description="auto: weight the training loss by inverse class frequency (for imbalanced data)."
    )
    sampler: Literal["shuffle", "balanced"] = Field(
        "shuffle", description="balanced: draw training images so that every class is seen equally often."
    )
    mixup: float = Field(
        0.0, ge=0.0, le=10.0, description="MixUp: Beta(a, a) mixing of image pairs and labels (0: off)."
    )
    cutmix: float = Field(
        0.0, ge=0.0, le=10.0, description="CutMix: Beta(a, a) pasted patches, labels mixed by area (0: off)."
    )
    grad_clip: Optional[float] = Field(None, gt=0.0, description="Clip the gradient norm to this value.")
    accumulate: int = Field(1, ge=1, le=1024, description="Accumulate gradients over N batches per optimiser step.")
    tta: int = Field(
        1,
        ge=1,
        le=9,
        description="Test-time views (1-9) averaged for the final test score: the image and copies shifted by "
        "1/28 of its side; 1 = off.",
    )
    schedule: Literal["standard", "gradual"] = Field(
        "standard",
        description="gradual: the backbone frozen for --unfreeze-at epochs, then trained with "
        "discriminative per-stage LRs.",
    )
    unfreeze_at: int = Field(1, ge=1, description="gradual: epochs trained with the backbone frozen.")
    lr_ratio: float = Field(
        10.0, ge=1.0, le=1e4, description="gradual: head LR / LR of the earliest trained stage (geometric between)."
    )

    # --- execution ------------------------------------------------------------------------
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="Where to train; auto picks CUDA, then MPS, then the CPU."
    )
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "64-true"] = Field(
        "32-true", description="Numeric precision (Lightning's names); bf16-mixed autocasts to bfloat16."
    )
    # NumPy's generator takes seeds below 2**32; a larger one failed deep inside the run.
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Random seed (same seed, same numbers on the same CPU).")
    devices: int = Field(
        1,
        ge=1,
        le=1024,
        description="Processes (CPU) or GPUs per machine; more than 1 trains with DDP, --batch-size split across them.",
    )
    num_nodes: int = Field(
        1, ge=1, le=1024, description="Machines taking part in DDP (start each with torchrun or srun)."
    )
    strategy: Literal["auto", "ddp"] = Field(
        "auto", description="ddp: DistributedDataParallel; auto: DDP when --devices x --num-nodes > 1."
    )
    num_workers: Optional[int] = Field(
        None,
        ge=0,
        le=64,
        description="Data loader worker processes (default: 0, as batches are preprocessed in one call; "
        "cores-1, at most 4, for per-sample RandAugment).",
    )
    out: Optional[str] = Field(None, description="Run directory (default runs/<timestamp>-<backbone>).")
    progress: bool = Field(True, description="Show the progress bar.")
    description: str = Field("", description="Free text saved with the run.")
    loggers: LoggerNames = Field(
        ["csv"],
        description="Experiment loggers, comma-separated: csv (metrics.csv, always written), tensorboard "
        "(RUN/tensorboard/), mlflow (see --mlflow-uri); tensorboard and mlflow need tlearn[track].",
        json_schema_extra={"flag": "logger"},
    )
    mlflow_uri: str = Field(
        "./mlruns", description="MLflow tracking URI for --logger mlflow: a local folder (file store) or a server URL."
    )

    @model_validator(mode="after")
    def _needs_validation(self) -> TrainConfig:
        if self.early_stopping and self.val_source == "none":
            raise ValueError("--early-stopping needs validation images: use --val-source holdout or test")
        return self

    @field_validator("lr", "weight_decay", "dropout", "label_smoothing", "momentum", "mixup", "cutmix")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    def with_changes(self, **changes: Any) -> TrainConfig:
        """A validated copy with some fields changed (``model_copy`` would skip validation)."""
        return make_config({**self.model_dump(), **changes})


def option_flag(name: str) -> str:
    """The command-line flag of a config field: ``--field-name``, or the ``flag`` the field declares
    (``loggers`` is ``--logger``, as a flag names one or more loggers while the YAML key holds a list)."""
    field = TrainConfig.model_fields.get(name)
    extra = field.json_schema_extra if field is not None and isinstance(field.json_schema_extra, dict) else {}
    return "--" + str(extra.get("flag") or name).replace("_", "-")


def _format_validation_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    if not first["loc"]:  # a rule across several fields: its message says it all
        return ("" if source == "option" else f"{source}: ") + first["msg"].removeprefix("Value error, ")
    where = ".".join(str(p) for p in first["loc"])
    # Values given as flags are named as flags; values from files by their YAML key.
    name = option_flag(where.split(".")[0]) if source == "option" else f"'{where}'"
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


def resolve_config(
    preset: Optional[str] = None,
    config_file: Optional[str | Path] = None,
    overrides: Optional[dict[str, Any]] = None,
    defaults: Optional[dict[str, Any]] = None,
) -> TrainConfig:
    """Merge preset < defaults < config file < explicit overrides into one validated config.

    ``defaults`` are values chosen for the data (null values count there); ``None`` in
    ``overrides`` means "not given". A validation error names the layer the bad value came from.
    """
    layers: list[tuple[str, dict[str, Any]]] = []
    if preset:
        layers.append((f"preset {preset}", load_preset(preset)))
    if defaults:
        layers.append(("data defaults", defaults))
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
