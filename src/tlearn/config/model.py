"""``TrainConfig``: every option of a run, validated, and the one-line errors that name a bad value.

Each field's description is also its ``--flag`` help in the CLI, so the two never disagree; each
field declares its ``--help`` section and, when it is optional, the word that resets it (see
``fields``).
"""

from __future__ import annotations

import math
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from .fields import (
    RESET,
    DatasetName,
    LoggerNames,
    data_field,
    declared,
    execution_field,
    model_field,
    optimisation_field,
)
from .freeze import Freeze, FreezeSpec


class TrainConfig(BaseModel):
    """Every option of a training run. Field descriptions double as the CLI help and the YAML reference."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- data -----------------------------------------------------------------------------
    dataset: DatasetName = data_field(
        "mnist",
        "A built-in dataset, folder (train/<class>/ images, optional val/, test/) or csv (--data-file).",
    )
    data_file: Optional[str] = data_field(None, "CSV file with path,label columns (for --dataset csv).", reset="none")
    data_dir: Optional[str] = data_field(
        None, "Dataset root (else $TLEARN_DATA_DIR, else ~/.cache/tlearn/datasets).", reset="default"
    )
    train_size: Optional[int] = data_field(
        None, "Training images, a seeded class-stratified subset (default: all).", reset="all", ge=1
    )
    test_size: Optional[int] = data_field(
        None, "Test images, a seeded stratified subset (default: all).", reset="all", ge=1
    )
    val_source: Literal["holdout", "test", "none"] = data_field(
        "holdout",
        "Where per-epoch validation images come from: holdout (unused training images), "
        "test (the test subset, as seed 000 did) or none.",
    )
    val_size: int = data_field(500, "Validation images for --val-source holdout.", ge=1)
    in_chans: Literal[1, 3] = data_field(
        3, "Model input channels: 3 (grey replicated to RGB) or 1 (first convolution adapted)."
    )
    image_size: Optional[int] = data_field(
        None, "Input side in pixels (default: the backbone's native size).", reset="native", ge=8, le=1024
    )
    resize_from: Optional[int] = data_field(
        None,
        "First epoch's side for progressive resizing (reaches --image-size mid-run).",
        reset="off",
        ge=8,
        le=1024,
    )
    normalize: Literal["weights", "imagenet", "none"] = data_field(
        "weights", "Input mean/std: the pretrained weights' own, ImageNet's, or none ([0, 1] scaling)."
    )
    eval_crop: Literal["auto", "centre", "none"] = data_field(
        "auto",
        "Evaluation view: centre (resize the short side to size / the backbone's crop fraction, "
        "then centre-crop; ImageNet-style), none (resize the whole image), auto: centre for folders and CSV "
        "files, none for the built-in sets.",
    )
    augment: Literal["none", "seed", "digits", "photo", "randaugment"] = data_field(
        "none",
        "Training augmentation: seed (seed 000's shear/zoom/flip), digits (small shifts, "
        "rotations, scaling), photo (random resized crop, horizontal flip), randaugment or none.",
    )

    # --- model ----------------------------------------------------------------------------
    backbone: str = model_field(
        "efficientnet_lite0",
        "efficientnet_lite0 | any torchvision CNN (resnet50, vgg16 …) | timm/<name> | "
        "local-dir:DIR or hf-hub:ORG/NAME (a timm model folder, e.g. from tlearn export --format timm).",
    )
    weights: str = model_field(
        "imagenet",
        "imagenet (for a model folder: its own weights) | none (random init) | PATH to a .safetensors/.pt state dict.",
    )
    head: Literal["linear", "mlp"] = model_field(
        "linear", "linear: pool, dropout, linear; mlp: seed 000's Flatten-Dense-Dropout-Dense."
    )
    head_hidden: int = model_field(256, "Hidden units of the mlp head.", ge=1)
    dropout: float = model_field(0.2, "Dropout before the linear head.", ge=0.0, lt=1.0)
    freeze: Freeze = model_field(
        FreezeSpec("none"), "backbone | none | until:<stage> (the stem up to and including that stage)."
    )
    channels_last: bool = model_field(True, "channels_last memory format (faster convolutions on CPU and GPU).")
    compile: bool = model_field(False, "torch.compile the trained part (pays off only for long runs).")
    feature_cache: Literal["auto", "off"] = model_field(
        "auto", "auto: train on cached activations of the frozen part whenever that is exact."
    )
    cached_views: int = model_field(
        0,
        "With augmentation and a frozen part: cache K augmented views per image (an approximation).",
        ge=0,
        le=100,
    )
    cache_dir: Optional[str] = model_field(
        None, "Feature cache folder (default ~/.cache/tlearn/features).", reset="default"
    )

    # --- optimisation ---------------------------------------------------------------------
    epochs: int = optimisation_field(10, "Training epochs.", ge=1, le=10000)
    batch_size: int = optimisation_field(
        64, "Images per optimiser step, in total over all DDP processes.", ge=1, le=65536
    )
    optimizer: Literal["adam", "adamw", "sgd"] = optimisation_field("adamw", "Optimiser (sgd uses --momentum).")
    lr: float = optimisation_field(1e-3, "Learning rate.", gt=0.0, le=10.0)
    weight_decay: float = optimisation_field(0.01, "Weight decay (not applied to biases and norms).", ge=0.0, le=10.0)
    momentum: float = optimisation_field(0.9, "SGD momentum.", ge=0.0, lt=1.0)
    scheduler: Literal["none", "cosine", "onecycle"] = optimisation_field(
        "cosine", "LR schedule: cosine (5 % linear warm-up, then cosine decay), onecycle or none; per step."
    )
    label_smoothing: float = optimisation_field(0.0, "Label smoothing of the training loss.", ge=0.0, lt=1.0)
    ema: Optional[float] = optimisation_field(
        None,
        "Keep an exponential moving average of the weights with this decay (e.g. 0.99) and use it "
        "as the model (then --keep applies to nothing: the average is kept).",
        reset="off",
        gt=0.0,
        lt=1.0,
    )
    time_budget: Optional[float] = optimisation_field(
        None,
        "Seconds the whole run may take, from the start of the command to finished outputs: the "
        "epochs (and so the LR schedule) are fitted to it from the measured speed of the first steps and again "
        "after every epoch; if too few fit, the high-resolution stages are frozen, then a smaller image size is used.",
        reset="off",
        ge=5.0,
        le=1e6,
    )
    keep: Literal["best", "last"] = optimisation_field(
        "best",
        "Which epoch's weights the run saves, evaluates and exports: best (lowest validation loss; "
        "needs validation images, else the last epoch is kept) or last.",
    )
    early_stopping: Optional[int] = optimisation_field(
        None,
        "Stop after N epochs without a lower validation loss (needs validation images).",
        reset="off",
        ge=1,
    )
    class_weights: Literal["none", "auto"] = optimisation_field(
        "none", "auto: weight the training loss by inverse class frequency (for imbalanced data)."
    )
    sampler: Literal["shuffle", "balanced"] = optimisation_field(
        "shuffle", "balanced: draw training images so that every class is seen equally often."
    )
    mixup: float = optimisation_field(
        0.0, "MixUp: Beta(a, a) mixing of image pairs and labels (0: off).", ge=0.0, le=10.0
    )
    cutmix: float = optimisation_field(
        0.0, "CutMix: Beta(a, a) pasted patches, labels mixed by area (0: off).", ge=0.0, le=10.0
    )
    grad_clip: Optional[float] = optimisation_field(None, "Clip the gradient norm to this value.", reset="off", gt=0.0)
    accumulate: int = optimisation_field(1, "Accumulate gradients over N batches per optimiser step.", ge=1, le=1024)
    tta: int = optimisation_field(
        1,
        "Test-time views (1-9) averaged for the final test score: the image and copies shifted by "
        "1/28 of its side; 1 = off.",
        ge=1,
        le=9,
    )
    recipe: Literal["none", "auto", "probe", "last-block", "last-two-blocks"] = optimisation_field(
        "none",
        "auto: choose how to train by cross-validation on the training images (the default for photos): "
        "a linear probe on the frozen backbone, or its last block or two fine-tuned on cached activations; "
        "the simplest within a standard error of the best wins. probe / last-block / last-two-blocks: train "
        "that one. A recipe sets what trains (it replaces --freeze); every other option applies as given. "
        "none: train as --freeze says.",
    )
    schedule: Literal["standard", "gradual"] = optimisation_field(
        "standard",
        "gradual: the backbone frozen for --unfreeze-at epochs, then trained with discriminative per-stage LRs.",
    )
    unfreeze_at: int = optimisation_field(1, "gradual: epochs trained with the backbone frozen.", ge=1)
    lr_ratio: float = optimisation_field(
        10.0, "gradual: head LR / LR of the earliest trained stage (geometric between).", ge=1.0, le=1e4
    )

    # --- execution ------------------------------------------------------------------------
    device: Literal["auto", "cpu", "cuda", "mps"] = execution_field(
        "auto", "Where to train; auto picks CUDA, then MPS, then the CPU."
    )
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "64-true"] = execution_field(
        "32-true", "Numeric precision (Lightning's names); bf16-mixed autocasts to bfloat16."
    )
    # NumPy's generator takes seeds below 2**32; a larger one failed deep inside the run.
    seed: int = execution_field(0, "Random seed (same seed, same numbers on the same CPU).", ge=0, le=2**32 - 1)
    devices: int = execution_field(
        1,
        "Processes (CPU) or GPUs per machine; more than 1 trains with DDP, --batch-size split across them.",
        ge=1,
        le=1024,
    )
    num_nodes: int = execution_field(
        1, "Machines taking part in DDP (start each with torchrun or srun).", ge=1, le=1024
    )
    strategy: Literal["auto", "ddp"] = execution_field(
        "auto", "ddp: DistributedDataParallel; auto: DDP when --devices x --num-nodes > 1."
    )
    num_workers: Optional[int] = execution_field(
        None,
        "Data loader worker processes (default: 0, as batches are preprocessed in one call; "
        "cores-1, at most 4, for per-sample RandAugment).",
        reset="auto",
        ge=0,
        le=64,
    )
    out: Optional[str] = execution_field(None, "Run directory (default runs/<timestamp>-<backbone>).", reset="default")
    progress: bool = execution_field(True, "Show the progress bar.")
    description: str = execution_field("", "Free text saved with the run.")
    loggers: LoggerNames = execution_field(
        ["csv"],
        "Experiment loggers, comma-separated: csv (metrics.csv, always written), tensorboard "
        "(RUN/tensorboard/), mlflow (see --mlflow-uri); tensorboard and mlflow need tlearn[track].",
        flag="logger",
    )
    mlflow_uri: str = execution_field(
        "./mlruns", "MLflow tracking URI for --logger mlflow: a local folder (file store) or a server URL."
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
    own = declared(field, "flag") if field is not None else None
    return "--" + (own or name).replace("_", "-")


def field_section(name: str) -> str:
    """The section (one of ``fields.SECTIONS``) a config field declares; ``--help`` groups flags by it."""
    section = declared(TrainConfig.model_fields[name], "section")
    if section is None:
        raise ValueError(f"config field '{name}' declares no section")
    return section


def reset_word(name: str) -> Optional[str]:
    """The word a flag gives to put an optional field back to its natural value (``all``, ``off`` …), or None."""
    return declared(TrainConfig.model_fields[name], "reset")


def without_resets(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with each :data:`RESET` replaced by its field's default (unknown names are left to validation)."""
    fields = TrainConfig.model_fields
    return {
        k: fields[k].get_default(call_default_factory=True) if v is RESET and k in fields else v
        for k, v in values.items()
    }


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line naming the first bad value: as a ``--flag`` when ``source`` is ``option``, else as the
    YAML key, prefixed by where it came from (a file, a preset)."""
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
    """Build a validated config; raise ``ConfigError`` naming the first bad field.

    A value :data:`RESET` stands for that field's default.
    """
    try:
        return TrainConfig(**without_resets(values))
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None
