"""``metrics.json`` of a finished run as one typed record, :class:`RunRecord`.

The file is what the record dumps: its fields, in order, then any keys it does not know. Files that
earlier versions of tlearn wrote have no ``schema_version`` (they are version 1) and still load: each
field that was added later has a default. Unknown keys (from a newer tlearn, or added by hand) are
kept, so a record reads and writes back whole.

A run that has not finished holds a small state dict in ``metrics.json`` instead (``complete``
false, ``interrupted``, ``resumable``): that is :func:`.directory.run_metrics`, not a record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..fileio import atomic_write_json

RECORD_FILE = "metrics.json"
# The version of the record's layout. Files without the key are version 1 (untyped, before the record).
SCHEMA_VERSION = 2
UNTYPED_VERSION = 1


class _OpenRecord(BaseModel):
    """A part of the record: typed fields, and unknown keys kept as they are."""

    model_config = ConfigDict(extra="allow")


class ClassScores(_OpenRecord):
    """One class's test figures (fractions) and how many test images it has."""

    precision: float
    recall: float
    f1: float
    support: int


class MachineRecord(_OpenRecord):
    """What the run's timings were measured on (``runtime.machine``)."""

    cpu: Optional[str] = None
    cpu_threads: Optional[int] = None
    accelerator: Optional[str] = None


class CacheRecord(_OpenRecord):
    """Whether the feature cache fed the run, why (not), and what it held."""

    used: bool = False
    reason: str = ""
    seconds: float = 0.0
    boundary: Optional[str] = None  # a stage name, or ``backbone`` for all of it
    views: int = 1
    pooled: bool = False
    feature_shape: list[int] = Field(default_factory=list)
    splits: list[dict[str, Any]] = Field(default_factory=list)  # per split extracted: images, views, hit, seconds


class BudgetRecord(_OpenRecord):
    """``--time-budget``'s plan (the measurements it was made from) and each re-plan during training."""

    budget_seconds: float
    epochs: int
    image_size: int
    elapsed_before: float
    step_seconds: float
    example_seconds: Optional[float] = None
    epoch_seconds: float
    evaluation_seconds: float
    freeze: str = "none"
    refits: list[list[int]] = Field(default_factory=list)  # [epochs done, epochs planned] at each re-plan


class RecipeRecord(_OpenRecord):
    """``--recipe``: the recipe asked for, the one trained, and the candidates' cross-validated scores."""

    asked: str
    chosen: str
    scheme: str = "forced"
    tolerance: float = 0.0
    candidates: list[dict[str, Any]] = Field(default_factory=list)  # name, accuracy, folds, the changes
    seconds: float = 0.0
    note: str = ""


class RunRecord(_OpenRecord):
    """A finished run's ``metrics.json``: test figures, what trained, how long it took, per-epoch history."""

    schema_version: int = SCHEMA_VERSION
    # the test split
    test_accuracy: float
    balanced_accuracy: Optional[float] = None  # mean per-class recall (older files lack it)
    test_loss: float
    test_samples: int
    tta_views: int = 1
    test_accuracy_single_view: Optional[float] = None  # with --tta: one view alone
    # the data
    train_samples: int
    skipped_files: int = 0
    skipped_examples: list[str] = Field(default_factory=list)
    val_source: str
    val_samples: int
    final_val_accuracy: Optional[float] = None
    final_train_accuracy: Optional[float] = None
    # the model and where it trained
    epochs: int
    backbone: str
    weights: str
    freeze: str
    image_size: int
    device: str
    machine: Optional[MachineRecord] = None
    seed: int
    macro_f1: float
    per_class: dict[str, ClassScores]
    confusion_matrix: list[list[int]]
    history: list[dict[str, Any]]  # one row per epoch, as in metrics.csv
    # which weights the model is
    keep: str = "last"
    model_epoch: Optional[int] = None
    stopped_early: bool = False
    # how it ran
    train_seconds: float
    eval_seconds: float
    feature_cache: CacheRecord = Field(default_factory=CacheRecord)
    resumed: bool = False
    processes: int = 1
    trainer: Optional[str] = None  # ``lightning`` or ``head loop`` (older files do not say)
    time_budget: Optional[BudgetRecord] = None
    recipe: Optional[RecipeRecord] = None
    total_seconds: float
    complete: bool = True

    @field_validator("feature_cache", mode="before")
    @classmethod
    def _cache_flag(cls, value: Any) -> Any:
        """The first versions wrote ``feature_cache: false`` (a flag, no reason)."""
        return {"used": value} if isinstance(value, bool) else value

    @classmethod
    def from_json_dict(cls, data: dict) -> RunRecord:
        """The record of a ``metrics.json`` mapping; without ``schema_version`` it is version 1.

        Raises pydantic's ``ValidationError`` when a field is missing or of the wrong type."""
        return cls.model_validate({"schema_version": UNTYPED_VERSION, **data})

    def to_json_dict(self) -> dict:
        """The mapping ``metrics.json`` holds: every field in order, then the keys the record does not know."""
        return self.model_dump()

    def write(self, run_dir: str | Path) -> Path:
        """Write ``metrics.json`` in ``run_dir`` (atomically: readers never see half a file); its path."""
        path = Path(run_dir) / RECORD_FILE
        atomic_write_json(path, self.to_json_dict())
        return path


def read_metrics_json(run_dir: str | Path) -> dict:
    """What ``metrics.json`` in ``run_dir`` holds, as read ({} when it is missing, unreadable or not a mapping)."""
    try:
        data = json.loads((Path(run_dir) / RECORD_FILE).read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def read_record(run_dir: str | Path) -> Optional[RunRecord]:
    """The record of the finished run in ``run_dir``; None when ``metrics.json`` is missing, damaged,
    or the run has not finished."""
    data = read_metrics_json(run_dir)
    if data.get("complete") is not True:
        return None
    try:
        return RunRecord.from_json_dict(data)
    except ValidationError:
        return None
