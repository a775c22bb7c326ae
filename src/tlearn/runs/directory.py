"""The run directory: its name, its files, and what ``tlearn.train`` returns about it."""

from __future__ import annotations

import datetime as _dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import RunError
from .record import RunRecord, read_metrics_json

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
    """What :func:`tlearn.train` returns: the run directory, its record and its files.

    ``record`` is ``metrics.json`` typed (:class:`~.record.RunRecord`); ``metrics`` is the same as
    the plain mapping the file holds (``result.metrics["test_accuracy"]``).
    """

    run_dir: Path
    record: RunRecord
    paths: dict[str, Path] = field(default_factory=dict)
    metrics: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.metrics = self.record.to_json_dict()

    @property
    def test_accuracy(self) -> float:
        """The test split's accuracy, a fraction."""
        return self.record.test_accuracy


def run_metrics(path: Path) -> dict:
    """What ``metrics.json`` in the run directory ``path`` holds ({} when it is missing or unreadable):
    for a run that has not finished, its state (``complete``, ``interrupted``, ``resumable``)."""
    return read_metrics_json(path)


def run_state(path: Path) -> Optional[str]:
    """``finished``, ``unfinished`` (a run started there), or None (no run in ``path``)."""
    if (path / "metrics.json").is_file():
        return "finished" if run_metrics(path).get("complete") else "unfinished"
    return "unfinished" if (path / "config.yaml").is_file() or (path / "checkpoints").is_dir() else None


def clear_run(path: Path) -> None:
    """Remove the files a run writes in ``path`` (and nothing else the folder holds)."""
    for name in (*RUN_FILES, "hparams.yaml"):
        (path / name).unlink(missing_ok=True)
    shutil.rmtree(path / "checkpoints", ignore_errors=True)


def refuse_existing_run(path: Path, overwrite: bool, what: str = "run") -> None:
    """Refuse to write over a run in ``path`` unless ``overwrite``; with it, clear that run."""
    state = run_state(path)
    if state is None:
        return
    if overwrite:
        clear_run(path)
    elif state == "finished":
        raise RunError(f"{path} holds a finished {what}; pass --overwrite to replace it, or choose another --out")
    else:
        raise RunError(
            f"{path} holds an unfinished {what}; continue it with: tlearn train --resume {path} "
            "(or pass --overwrite to start again)"
        )


def new_run_dir(out: Optional[str], backbone: str, overwrite: bool = False) -> Path:
    """``out`` if given (never over another run, unless ``overwrite``), else a new
    ``runs/<timestamp>-<backbone>`` (``-2``, ``-3`` … when runs start in the same second)."""
    if not out:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path("runs") / f"{stamp}-{backbone.replace('/', '-')}"
        for n in range(1, 10_000):
            path = base if n == 1 else base.with_name(f"{base.name}-{n}")
            try:
                path.mkdir(parents=True, exist_ok=False)  # atomic: two processes never get the same one
                return path
            except FileExistsError:
                continue
            except OSError as err:
                raise RunError(f"cannot create run directory {path}: {err.strerror}") from None
        raise RunError(f"cannot find a free run directory name beside {base}")
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise RunError(f"--out {path} exists and is not a directory")
    refuse_existing_run(path, overwrite)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(f"cannot create run directory {path}: {err.strerror}") from None
    return path
