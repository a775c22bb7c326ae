"""Datasets of image files: class folders (``train/<class>/…``, optional ``val/``, ``test/``) and CSV files.

Files stay files: each image is decoded when needed, at the run's preprocessing. Files that are
not decodable images are skipped and counted in a warning.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import torch

from ..errors import DataError
from .images import decodable, is_image_file
from .preprocessing import Preprocessing
from .splits import FileSplit


def _walk_classes(folder: Path, names: list[str]) -> tuple[list[tuple[str, int]], int]:
    """``(path, label)`` of every usable image below ``folder/<name>/`` and the count of skipped files.

    The walk is torchvision's ``make_dataset``; classes missing in ``folder`` simply have no images.
    """
    from torchvision.datasets.folder import make_dataset

    present = {name: names.index(name) for name in names if (folder / name).is_dir()}
    skipped = 0

    def usable(path: str) -> bool:
        nonlocal skipped
        ok = is_image_file(Path(path))
        skipped += not ok
        return ok

    samples = make_dataset(str(folder), present, is_valid_file=usable, allow_empty=True)
    return samples, skipped


def _class_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def scan_folder(root: Path, prep: Preprocessing) -> dict[str, FileSplit]:
    """``root/{train,val,test}/<class>/<image>``; ``train/`` is required, the others optional."""
    if not root.is_dir():
        raise DataError(f"data directory does not exist: {root}")
    if not (root / "train").is_dir():
        raise DataError(f"{root} has no train/ folder; expected {root}/train/<class>/<images> (optional val/, test/)")
    names = _class_names(root / "train")
    if len(names) < 2:
        raise DataError(f"{root / 'train'} needs at least 2 class folders, found {len(names)}")
    splits, skipped = {}, 0
    for split in ("train", "val", "test"):
        if not (root / split).is_dir():
            continue
        unknown = sorted(set(_class_names(root / split)) - set(names))
        if unknown:
            raise DataError(f"{root / split} has class folder(s) not in train/: {', '.join(unknown)}")
        samples, bad = _walk_classes(root / split, names)
        skipped += bad
        paths = [Path(path) for path, _ in samples]
        labels = torch.tensor([label for _, label in samples], dtype=torch.long)
        splits[split] = FileSplit(paths, labels, names, prep)
    empty = [n for i, n in enumerate(names) if not (splits["train"].labels == i).any()]
    if empty:
        raise DataError(f"class folder(s) with no usable images in {root / 'train'}: {', '.join(empty)}")
    if skipped:
        warnings.warn(f"skipped {skipped} file(s) that are not decodable images in {root}", stacklevel=2)
    return splits


def read_csv_dataset(path: Path, prep: Preprocessing) -> FileSplit:
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
    paths, labels, skipped = [], [], 0
    for row in rows:
        file = Path(row["path"] or "")
        file = file if file.is_absolute() else path.parent / file
        if row.get("label") and file.is_file() and decodable(file):
            paths.append(file)
            labels.append(names.index(row["label"]))
        else:
            skipped += 1
    if skipped:
        warnings.warn(
            f"skipped {skipped} row(s) of {path} whose file is missing or not a decodable image", stacklevel=2
        )
    if not paths:
        raise DataError(f"no usable images listed in {path}")
    return FileSplit(paths, torch.tensor(labels, dtype=torch.long), names, prep)
