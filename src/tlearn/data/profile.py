"""Data-aware defaults: what a data folder holds, and which shipped preset suits it.

``tlearn train --data-dir photos/`` needs no other flag: the folder is recognised (MNIST-style
IDX files, CIFAR or SVHN files, class folders, a CSV file), a few image headers are read to tell
photos from small images, and ``detect`` names the matching preset and any further defaults the
data implies. The CLI layers them under any ``--config`` file and flags (``cli.app``); an explicit
``--preset`` turns this off.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..paths import data_root
from .idx import IDX_DATASETS
from .images import has_image_suffix

# Images whose typical short side is at most this are "small" (CIFAR, MNIST as PNG files), not photos.
SMALL_SIDE = 64
PROBE_FILES = 48


@dataclass(frozen=True)
class DataProfile:
    """What the data is, and the defaults chosen for it."""

    dataset: str
    preset: str
    summary: str
    extra: dict = field(default_factory=dict)  # defaults beyond the preset's (e.g. all training images)


def _image_files(folder: Path, limit: int) -> list[Path]:
    """Up to ``limit`` image files spread over the class folders of ``folder`` (or of the CSV rows)."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    per_class = max(1, limit // max(1, len(classes)))
    found = []
    for cls in classes:
        found.extend(sorted(p for p in cls.rglob("*") if has_image_suffix(p))[:per_class])
    return found[:limit]


def _probe(files: list[Path]) -> tuple[int, bool]:
    """Median short side and whether every image is grey, from the files' headers (no decoding)."""
    from PIL import Image

    sides, grey = [], True
    for path in files:
        try:
            with Image.open(path) as img:
                sides.append(min(img.size))
                grey = grey and img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
        except Exception:  # unreadable files are counted later, when the data is read
            continue
    return (int(statistics.median(sides)) if sides else 0), grey and bool(sides)


def _files_profile(dataset: str, files: list[Path], where: str) -> DataProfile:
    side, grey = _probe(files)
    if side and side <= SMALL_SIDE:
        kind = "grey" if grey else "colour"
        preset = "default" if grey else "small-images"
        summary = f"{where}: small {kind} images (about {side} px)"
        return DataProfile(dataset, preset, summary, {"train_size": None, "eval_crop": "none"})
    return DataProfile(dataset, "photos", f"{where}: photos (about {side} px)")


def _csv_files(data_file: Path) -> list[Path]:
    import csv

    try:
        with open(data_file, encoding="utf-8") as handle:
            rows = [row for _, row in zip(range(PROBE_FILES), csv.DictReader(handle))]
        return [p if p.is_absolute() else data_file.parent / p for p in (Path(r.get("path") or "") for r in rows)]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def detect(data_dir: Optional[str], data_file: Optional[str], dataset: Optional[str] = None) -> DataProfile:
    """The profile of the data a run will read (``dataset``: as given by flags or a file, if at all)."""
    if dataset in IDX_DATASETS:
        return DataProfile(dataset, "default", f"{dataset}: grey 28-px images")
    if dataset in ("cifar10", "cifar100", "svhn"):
        return DataProfile(dataset, "small-images", f"{dataset}: small colour images (32 px)")
    if data_file or dataset == "csv":
        path = Path(data_file).expanduser() if data_file else None
        return _files_profile("csv", _csv_files(path) if path else [], f"CSV {path}")
    root = data_root(data_dir)
    if dataset is None:
        found = _builtin_in(root)
        if found:
            return detect(data_dir, None, found)
        if not _has_class_folders(root):
            return DataProfile("mnist", "default", "MNIST (no other dataset found there)")
    train = root / "train" if (root / "train").is_dir() else root
    files = _image_files(train, PROBE_FILES) if train.is_dir() else []
    return _files_profile("folder", files, f"{root}")


def _builtin_in(root: Path) -> Optional[str]:
    for name, (title, _) in IDX_DATASETS.items():
        if (root / title / "raw").is_dir():
            return name
    if (root / "cifar-10-batches-py").is_dir():
        return "cifar10"
    if (root / "cifar-100-python").is_dir():
        return "cifar100"
    return "svhn" if (root / "train_32x32.mat").is_file() else None


def _has_class_folders(root: Path) -> bool:
    if not root.is_dir():
        return False
    folder = root / "train" if (root / "train").is_dir() else root
    return sum(1 for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) >= 2
