"""Using a finished run: reload it, read user images, predict, re-evaluate on a test set.

Everything goes through the same preprocessing as training (``model.json`` carries it), so an
image file of any size or mode is classified exactly as the test set was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from .datasets import IMAGE_SUFFIXES
from .errors import DataError, TlearnError
from .transforms import BatchPreprocessor, Preprocessing



@dataclass
class LoadedRun:
    """A trained model with its preprocessing and class names, ready for inference."""

    run_dir: Path
    model: torch.nn.Module
    spec: dict
    preprocessing: Preprocessing

    @property
    def classes(self) -> list[str]:
        return list(self.spec["classes"])

    @property
    def data_channels(self) -> int:
        """Channels of the training images (1 for MNIST): user images are converted to match."""
        return int(self.spec.get("data_channels", 1))

    def preprocessor(self) -> BatchPreprocessor:
        return BatchPreprocessor(self.preprocessing)


def load_run(run_dir: str | Path) -> LoadedRun:
    """Load a finished run directory (``model.safetensors`` + ``model.json``), without pickle."""
    from .runs import load_model

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TlearnError(f"run directory not found: {run_dir}")
    model, spec = load_model(run_dir)
    p = spec["preprocessing"]
    prep = Preprocessing(int(p["image_size"]), int(p["in_chans"]), tuple(p["mean"]), tuple(p["std"]))
    return LoadedRun(run_dir, model, spec, prep)


def find_images(paths: list[str]) -> list[Path]:
    """Expand folders (recursively) into image files; keep explicit files as given."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"no such image file or folder: {path}")
    if not found:
        raise DataError(f"no image files found in {', '.join(paths)}")
    return found


def read_image(path: Path, channels: int) -> torch.Tensor:
    """Decode any PIL-readable image to uint8 ``[channels, H, W]`` (alpha dropped, palette expanded)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "P", "PA"):
                img = img.convert("RGBA").convert("RGB")
            img = img.convert("L" if channels == 1 else "RGB")
            data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
            return data.reshape(img.height, img.width, channels).permute(2, 0, 1).contiguous()
    except Image.DecompressionBombError:
        raise DataError(f"cannot read image {path}: too many pixels (a possible decompression bomb)") from None
    except Exception as err:  # decoders raise many types (OSError, ValueError, SyntaxError, struct.error …)
        raise DataError(f"cannot read image {path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


def read_images(paths: list[Path], channels: int, skip_bad: bool = False) -> tuple[list[Path], list[torch.Tensor], list[Path]]:
    """Read images; with ``skip_bad`` undecodable files are skipped and returned as the third item."""
    kept, images, bad = [], [], []
    for path in paths:
        try:
            images.append(read_image(path, channels))
            kept.append(path)
        except DataError:
            if not skip_bad:
                raise
            bad.append(path)
    if not kept:
        raise DataError(f"none of the {len(bad)} file(s) is a decodable image (first: {bad[0]})")
    return kept, images, bad


@torch.inference_mode()
def predict_images(run: LoadedRun, images: list[torch.Tensor], batch_size: int = 64, tta: int = 1) -> torch.Tensor:
    """Class probabilities ``[N, classes]`` for uint8 images of any sizes (``tta``: shifted views averaged)."""
    from .evaluation import mean_probabilities
    from .transforms import tta_shifts

    shifts = tta_shifts(tta)
    preprocess = run.preprocessor()
    crop_pct = run.spec.get("eval_crop_pct")
    if crop_pct:  # trained on photos: the same resize + centre crop as its test set
        from torchvision.transforms import v2

        size = run.preprocessing.image_size
        crop = v2.Compose([v2.Resize(int(round(size / crop_pct)), antialias=True), v2.CenterCrop(size)])
        images = [crop(img) for img in images]
    run.model.eval()
    probabilities = []
    for start in range(0, len(images), batch_size):
        # Each image is resized on its own (sizes differ), then the batch runs at once.
        chunk = images[start : start + batch_size]
        views = [torch.cat([preprocess(img.unsqueeze(0), shift=s) for img in chunk]) for s in shifts]
        probabilities.append(mean_probabilities([run.model(v) for v in views]))
    return torch.cat(probabilities) if probabilities else torch.empty(0, len(run.classes))


def top_k(probabilities: torch.Tensor, classes: list[str], k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` most likely ``(class, probability)`` pairs per row."""
    k = max(1, min(k, len(classes)))
    values, indices = probabilities.topk(k, dim=1)
    return [[(classes[i], float(v)) for v, i in zip(vs, ix)] for vs, ix in zip(values.tolist(), indices.tolist())]


def evaluate_run(run: LoadedRun, data_dir: Optional[str] = None, test_size: Optional[int] = None, tta: int = 1) -> dict:
    """Re-evaluate a run on its dataset's test split (full, or a seeded stratified subset;
    ``tta``: that many shifted views averaged per image)."""
    from .config import make_config, read_yaml
    from .data import build_splits
    from .evaluation import evaluate_split

    config_path = run.run_dir / "config.yaml"
    saved = read_yaml(config_path) if config_path.is_file() else {}
    overrides = {"val_source": "none", "test_size": test_size if test_size is not None else saved.get("test_size")}
    if data_dir:
        overrides["data_dir"] = data_dir
    config = make_config({**saved, **overrides}, str(config_path))
    test = build_splits(config).test
    test.configure(run.preprocessing.image_size, run.spec.get("eval_crop_pct") or 0.875)
    return evaluate_split(run.model, run.preprocessor(), test, tta=tta)
