"""The run directory: its name, its files, and what ``tlearn.train`` returns about it."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import RunError

# What a finished run directory holds (besides checkpoints/).
RUN_FILES = (
    "config.yaml",
    "metrics.csv",
    "metrics.json",
    "accuracy.png",
    "loss.png",
    "confusion_matrix.png",
    "model.safetensors",
    "model.json",
    "report.html",
)


@dataclass
class RunResult:
    """What :func:`tlearn.train` returns: the run directory, its metrics and its files."""

    run_dir: Path
    metrics: dict
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def test_accuracy(self) -> float:
        return float(self.metrics["test_accuracy"])


def new_run_dir(out: Optional[str], backbone: str) -> Path:
    """``out`` if given, else ``runs/<timestamp>-<backbone>`` (unique even within one second)."""
    if out:
        path = Path(out).expanduser()
        if path.exists() and not path.is_dir():
            raise RunError(f"--out {path} exists and is not a directory")
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path("runs") / f"{stamp}-{backbone.replace('/', '-')}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(f"cannot create run directory {path}: {err.strerror}") from None
    return path
