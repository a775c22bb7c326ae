"""``model.json`` + ``model.safetensors``: a trained model saved without pickle, and loaded back.

``ModelSpec`` is the one place that writes and reads ``model.json``: what the network is
(backbone, head), its class names, and the :class:`~tlearn.data.preprocessing.Preprocessing`
that turns an image into its input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.augment import BatchPreprocessor
from ..data.preprocessing import Preprocessing
from ..errors import RunError, one_line
from ..fileio import atomic_write_bytes, atomic_write_json

MODEL_FILE = "model.safetensors"
MODEL_SPEC_FILE = "model.json"
SPEC_FORMAT = "tlearn-model-v2"


@dataclass(frozen=True)
class ModelSpec:
    """What rebuilds a trained network and prepares its inputs, without the original config."""

    backbone: str
    head: str
    head_hidden: int
    dropout: float
    classes: tuple[str, ...]
    preprocessing: Preprocessing

    @classmethod
    def from_config(cls, config, prep: Preprocessing, classes: list[str]) -> ModelSpec:
        return cls(config.backbone, config.head, config.head_hidden, config.dropout, tuple(classes), prep)

    def to_dict(self) -> dict:
        return {
            "format": SPEC_FORMAT,
            "backbone": self.backbone,
            "head": self.head,
            "head_hidden": self.head_hidden,
            "dropout": self.dropout,
            "classes": list(self.classes),
            "preprocessing": self.preprocessing.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        prep = dict(data["preprocessing"])
        if data.get("format") == "tlearn-model-v1":  # kept data channels and the crop beside the preprocessing
            prep.update(data_channels=data.get("data_channels", 1), crop_pct=data.get("eval_crop_pct"))
        return cls(
            str(data["backbone"]),
            str(data["head"]),
            int(data["head_hidden"]),
            float(data["dropout"]),
            tuple(str(c) for c in data["classes"]),
            Preprocessing.from_dict(prep),
        )

    def build(self) -> torch.nn.Module:
        """The network described here, with random weights."""
        from ..models.backbones import create_backbone
        from ..models.transfer import build_model

        backbone = create_backbone(self.backbone, "none", in_chans=self.preprocessing.in_chans)
        return build_model(backbone, self.preprocessing, len(self.classes), self.head, self.dropout, self.head_hidden)


def save_model(run_dir: Path, model: torch.nn.Module, spec: ModelSpec) -> None:
    """Write ``model.safetensors`` and ``model.json`` (everything needed to rebuild it)."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(run_dir / MODEL_FILE, save(state))
    atomic_write_json(run_dir / MODEL_SPEC_FILE, spec.to_dict())


def load_model(run_dir: str | Path) -> tuple[torch.nn.Module, ModelSpec]:
    """Rebuild a trained model from a run directory: ``(model, spec)``; no pickle involved."""
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    spec_path, weights_path = run_dir / MODEL_SPEC_FILE, run_dir / MODEL_FILE
    if not spec_path.is_file() or not weights_path.is_file():
        raise RunError(f"{run_dir} is not a finished tlearn run (no {MODEL_SPEC_FILE} / {MODEL_FILE})")
    try:
        spec = ModelSpec.from_dict(json.loads(spec_path.read_text(encoding="utf-8")))
        model = spec.build()
    except (ValueError, KeyError, TypeError) as err:
        raise RunError(f"{spec_path} is damaged ({type(err).__name__}: {err}); retrain or restore it") from None
    try:
        model.load_state_dict(load_file(str(weights_path)))
    except Exception as err:  # shape/key mismatch or an unreadable file
        raise RunError(f"{weights_path} does not fit the model described in {spec_path} ({one_line(err)})") from None
    model.eval()
    return model, spec


@dataclass
class LoadedRun:
    """A trained model with its preprocessing and class names, ready for inference."""

    run_dir: Path
    model: torch.nn.Module
    spec: ModelSpec

    @property
    def classes(self) -> list[str]:
        return list(self.spec.classes)

    @property
    def preprocessing(self) -> Preprocessing:
        return self.spec.preprocessing

    @property
    def data_channels(self) -> int:
        """Channels of the training images (1 for MNIST): user images are converted to match."""
        return self.spec.preprocessing.data_channels

    def preprocessor(self) -> BatchPreprocessor:
        return BatchPreprocessor(self.preprocessing)


def load_run(run_dir: str | Path) -> LoadedRun:
    """Load a finished run directory (``model.safetensors`` + ``model.json``), without pickle."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"run directory not found: {run_dir}")
    model, spec = load_model(run_dir)
    return LoadedRun(run_dir, model, spec)
