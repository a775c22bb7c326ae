"""Datasets of image files: class folders and CSV files, decoded once, in parallel, into memory.

Layouts: ``root/train/<class>/…`` (optional ``val/``, ``test/``), or ``root/<class>/…`` alone; or a
CSV file of ``path,label`` rows. Every file is decoded completely when the dataset is read — at
the run's working size, in a thread pool — so a truncated or mislabelled file is skipped and
counted then, never in the middle of an epoch, and no epoch decodes a JPEG again: the decoded
images are kept as one uint8 tensor (photos as squares of the working size). A dataset larger
than the memory budget is validated the same way but kept as files, decoded again per epoch.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import DataError
from .images import has_image_suffix, read_image_files
from .preprocessing import Preprocessing, center_crop
from .splits import FileSplit, ImageSplit

# Decoded images kept in memory up to this many bytes (about 7,000 photos at 224 px); beyond, files.
MEMORY_BUDGET_BYTES = 1_500_000_000


@dataclass
class Skipped:
    """Files left out of a dataset because they are not decodable images (or are missing)."""

    paths: list[str] = field(default_factory=list)

    def add(self, paths) -> None:
        self.paths.extend(str(p) for p in paths)

    def warn(self, where: Path) -> None:
        if self.paths:
            warnings.warn(
                f"skipped {len(self.paths)} file(s) in {where} that are not decodable images (first: {self.paths[0]})",
                stacklevel=3,
            )


def _uniform(images: list[torch.Tensor], prep: Preprocessing) -> torch.Tensor:
    """One ``[N, C, S, S]`` tensor: photos as centre squares of the working size; other images
    (small ones, resized whole later) squashed to their most common size."""
    if prep.crop_pct is not None:
        return torch.stack([center_crop(img, prep.working_side) for img in images])
    from torchvision.transforms.v2 import functional as F

    side = Counter(max(img.shape[-2:]) for img in images).most_common(1)[0][0]
    return torch.stack([img if img.shape[-2:] == (side, side) else F.resize(img, [side, side]) for img in images])


def load_files(
    paths: list[Path], labels: list[int], classes: list[str], prep: Preprocessing, skipped: Skipped
) -> ImageSplit | FileSplit:
    """Decode every file once; the decodable ones become a split (in memory within the budget)."""
    images, bad = read_image_files(paths, prep.data_channels, prep.working_side)
    skipped.add(bad)
    kept = [i for i, image in enumerate(images) if image is not None]
    label_tensor = torch.tensor([labels[i] for i in kept], dtype=torch.long)
    if not kept:
        return ImageSplit(torch.zeros(0, prep.data_channels, 1, 1, dtype=torch.uint8), label_tensor, classes)
    side = prep.working_side or max(max(images[i].shape[-2:]) for i in kept)
    if len(kept) * prep.data_channels * side * side > MEMORY_BUDGET_BYTES:
        return FileSplit([paths[i] for i in kept], label_tensor, classes, prep)
    return ImageSplit(_uniform([images[i] for i in kept], prep), label_tensor, classes)


def _class_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _walk(folder: Path, names: list[str]) -> tuple[list[Path], list[int], list[Path]]:
    """Files with an image suffix below ``folder/<name>/`` (torchvision's ``make_dataset`` walk), and the others."""
    from torchvision.datasets.folder import make_dataset

    present = {name: names.index(name) for name in names if (folder / name).is_dir()}
    others: list[Path] = []

    def candidate(path: str) -> bool:
        ok = has_image_suffix(Path(path))
        if not ok and not Path(path).name.startswith("."):
            others.append(Path(path))
        return ok

    samples = make_dataset(str(folder), present, is_valid_file=candidate, allow_empty=True)
    return [Path(p) for p, _ in samples], [label for _, label in samples], others


def _split_folders(root: Path) -> dict[str, Path]:
    """``{"train": …, "val": …, "test": …}`` that exist; ``root`` itself as train when it holds the classes."""
    if not root.is_dir():
        raise DataError(f"data directory does not exist: {root}")
    if (root / "train").is_dir():
        return {s: root / s for s in ("train", "val", "test") if (root / s).is_dir()}
    if len(_class_names(root)) >= 2:
        return {"train": root}
    raise DataError(f"{root} has no train/ folder; expected {root}/train/<class>/<images> or {root}/<class>/<images>")


def scan_folder(root: Path, prep: Preprocessing) -> tuple[dict[str, ImageSplit | FileSplit], Skipped]:
    """Read a folder dataset; returns its splits and the files skipped (also reported in a warning)."""
    folders = _split_folders(root)
    names = _class_names(folders["train"])
    if len(names) < 2:
        raise DataError(f"{folders['train']} needs at least 2 class folders, found {len(names)}")
    splits, skipped = {}, Skipped()
    for split, folder in folders.items():
        unknown = sorted(set(_class_names(folder)) - set(names))
        if unknown:
            raise DataError(f"{folder} has class folder(s) not in {folders['train'].name}/: {', '.join(unknown)}")
        paths, labels, others = _walk(folder, names)
        skipped.add(others)
        splits[split] = load_files(paths, labels, names, prep, skipped)
    empty = [n for i, n in enumerate(names) if not (splits["train"].labels == i).any()]
    if empty:
        raise DataError(f"class folder(s) with no usable images in {folders['train']}: {', '.join(empty)}")
    skipped.warn(root)
    return splits, skipped


def read_csv_dataset(path: Path, prep: Preprocessing) -> tuple[ImageSplit | FileSplit, Skipped]:
    """A CSV with ``path,label`` columns (paths relative to the CSV's folder or absolute)."""
    if not path.is_file():
        raise DataError(f"CSV file not found: {path}")
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read CSV {path}: {err}") from None
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise DataError(f"{path} needs a header with 'path' and 'label' columns")
    names = sorted({r["label"] for r in rows if r.get("label")})
    if len(names) < 2:
        raise DataError(f"{path} needs at least 2 distinct labels, found {len(names)}")
    files, labels, skipped = [], [], Skipped()
    for row in rows:
        file = Path(row["path"] or "")
        file = file if file.is_absolute() else path.parent / file
        if row.get("label") and file.is_file():
            files.append(file)
            labels.append(names.index(row["label"]))
        else:
            skipped.add([file])
    split = load_files(files, labels, names, prep, skipped)
    if not len(split):
        raise DataError(f"no usable images listed in {path}")
    skipped.warn(path)
    return split, skipped
