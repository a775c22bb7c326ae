"""Run directories: layout, the saved model (safetensors + JSON, no pickle) and reloading it."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from .errors import TlearnError
from .utils import atomic_write_bytes, atomic_write_json

MODEL_FILE = "model.safetensors"
MODEL_SPEC_FILE = "model.json"


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
            raise TlearnError(f"--out {path} exists and is not a directory")
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
        raise TlearnError(f"cannot create run directory {path}: {err.strerror}") from None
    return path


def save_model(run_dir: Path, model: torch.nn.Module, spec: dict) -> None:
    """Write ``model.safetensors`` and ``model.json`` (everything needed to rebuild it)."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(run_dir / MODEL_FILE, save(state))
    atomic_write_json(run_dir / MODEL_SPEC_FILE, spec)


def load_model(run_dir: str | Path):
    """Rebuild a trained model from a run directory: ``(model, spec)``; no pickle involved."""
    from safetensors.torch import load_file

    from .backbones import create_backbone
    from .model import build_model

    run_dir = Path(run_dir)
    spec_path, weights_path = run_dir / MODEL_SPEC_FILE, run_dir / MODEL_FILE
    if not spec_path.is_file() or not weights_path.is_file():
        raise TlearnError(f"{run_dir} is not a finished tlearn run (no {MODEL_SPEC_FILE} / {MODEL_FILE})")
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        prep = spec["preprocessing"]
        backbone = create_backbone(spec["backbone"], "none", in_chans=prep["in_chans"])
        model = build_model(
            backbone, len(spec["classes"]), spec["head"], prep["image_size"], prep["in_chans"], spec["dropout"], spec["head_hidden"]
        )
    except (ValueError, KeyError, TypeError) as err:
        raise TlearnError(f"{spec_path} is damaged ({type(err).__name__}: {err}); retrain or restore it") from None
    try:
        model.load_state_dict(load_file(str(weights_path)))
    except Exception as err:  # shape/key mismatch or an unreadable file
        first = str(err).strip().splitlines()[0][:200]
        raise TlearnError(f"{weights_path} does not fit the model described in {spec_path} ({first})") from None
    model.eval()
    return model, spec
