"""Datasets: locating, reading and subsetting MNIST, kept as uint8 tensors.

Images stay uint8 ``[N, 1, 28, 28]`` in memory (47 MB for all 60k); resizing, normalisation and
augmentation happen later on batches (see ``transforms.py``), so the upsampled dataset is never
materialised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch.utils.data import Dataset

from .errors import DataError

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_CLASSES = [str(i) for i in range(10)]


def default_cache_dir() -> Path:
    """The per-user cache directory of tlearn (``$XDG_CACHE_HOME/tlearn`` or ``~/.cache/tlearn``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tlearn"


def resolve_data_dir(data_dir: Optional[str]) -> Path:
    """Dataset root: the explicit option, else ``$TLEARN_DATA_DIR``, else the user cache."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get("TLEARN_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return default_cache_dir() / "datasets"


def offline_mode() -> bool:
    """True when the user asked for no network access (``TLEARN_OFFLINE`` or ``HF_HUB_OFFLINE``)."""
    return any(os.environ.get(k, "") not in ("", "0") for k in ("TLEARN_OFFLINE", "HF_HUB_OFFLINE"))


@dataclass
class ImageSplit:
    """A split held as uint8 images ``[N, C, H, W]`` and int64 labels ``[N]``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return int(self.labels.numel())

    def subset(self, indices: torch.Tensor) -> "ImageSplit":
        return ImageSplit(self.images[indices], self.labels[indices], self.classes)


def _mnist_missing(raw: Path) -> list[str]:
    return [f for f in MNIST_FILES if not (raw / f).is_file() and not (raw / f"{f}.gz").is_file()]


def _download_mnist(root: Path) -> None:
    from torchvision.datasets import MNIST

    raw = root / "MNIST" / "raw"
    if offline_mode():
        raise DataError(f"MNIST not found in {raw} and offline mode is set; put {', '.join(MNIST_FILES)} there")
    try:
        MNIST(str(root), train=True, download=True)
    except Exception as err:  # network errors come in many types (URLError, socket, HTTP)
        raise DataError(
            f"MNIST not found in {raw} and downloading failed ({type(err).__name__}); "
            f"put {', '.join(MNIST_FILES)} there or pass --data-dir / set TLEARN_DATA_DIR"
        ) from None


def load_mnist(root: Path, train: bool) -> ImageSplit:
    """Read one MNIST split from ``root/MNIST/raw`` (torchvision layout), downloading if possible."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    if not root.exists() and root != resolve_data_dir(None):
        raise DataError(f"data directory does not exist: {root} (set --data-dir or TLEARN_DATA_DIR)")
    raw = root / "MNIST" / "raw"
    if _mnist_missing(raw):
        _download_mnist(root)
    prefix = "train" if train else "t10k"
    images_path, labels_path = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
    try:
        images = read_image_file(str(images_path))
        labels = read_label_file(str(labels_path))
    except Exception as err:  # torchvision raises assorted errors on truncated/corrupt IDX files
        raise DataError(f"cannot read MNIST file in {raw}: corrupt or truncated IDX data ({err}); re-download it") from None
    if images.ndim != 3 or images.shape[0] != labels.shape[0] or images.shape[0] == 0:
        raise DataError(f"MNIST files in {raw} are inconsistent: {images.shape[0]} images vs {labels.shape[0]} labels")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"MNIST label file in {raw} has labels outside 0-9; re-download it")
    return ImageSplit(images.unsqueeze(1).contiguous(), labels.long(), list(MNIST_CLASSES))


def stratified_indices(
    labels: torch.Tensor, n: Optional[int], seed: int, exclude: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """A seeded, class-stratified subset of ``n`` indices (all when ``n`` is None).

    Each class gets a share proportional to its frequency (largest remainder), so 1,000 MNIST
    images hold about 100 of each digit. Indices in ``exclude`` are never chosen.
    """
    pool = torch.arange(labels.numel())
    if exclude is not None and exclude.numel():
        keep = torch.ones(labels.numel(), dtype=torch.bool)
        keep[exclude] = False
        pool = pool[keep]
    if n is None or n == pool.numel():
        return pool
    if n > pool.numel():
        raise DataError(f"asked for {n} samples but only {pool.numel()} are available")
    gen = torch.Generator().manual_seed(seed)
    pool_labels = labels[pool]
    classes, counts = torch.unique(pool_labels, return_counts=True)
    exact = counts.double() * n / pool.numel()
    quota = exact.floor().long()
    short = n - int(quota.sum())
    if short:
        order = torch.argsort(exact - quota.double(), descending=True, stable=True)
        quota[order[:short]] += 1
    chosen = []
    for cls, k in zip(classes.tolist(), quota.tolist()):
        members = pool[pool_labels == cls]
        chosen.append(members[torch.randperm(members.numel(), generator=gen)[:k]])
    picked = torch.cat(chosen)
    return picked[torch.randperm(picked.numel(), generator=gen)]


class UInt8ImageDataset(Dataset):
    """Serves ``(uint8 image [C, H, W], label)`` pairs; an optional per-sample uint8 transform."""

    def __init__(self, split: ImageSplit, transform=None):
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        image = self.split.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.split.labels[index]


@dataclass
class DataSplits:
    """The train/val/test splits of a run, plus what was used for validation."""

    train: ImageSplit
    val: Optional[ImageSplit]
    test: ImageSplit
    val_source: str

    @property
    def classes(self) -> list[str]:
        return self.train.classes


def build_splits(config) -> DataSplits:
    """Load the dataset named in ``config`` and cut the seeded train/val/test subsets."""
    root = resolve_data_dir(config.data_dir)
    train_pool = load_mnist(root, train=True)
    test_pool = load_mnist(root, train=False)
    if config.test_size is not None and config.test_size > len(test_pool):
        raise DataError(f"--test-size {config.test_size} is more than the {len(test_pool)} test images available")
    if config.train_size is not None and config.train_size > len(train_pool):
        raise DataError(f"--train-size {config.train_size} is more than the {len(train_pool)} training images available")
    train_idx = stratified_indices(train_pool.labels, config.train_size, config.seed)
    test = test_pool.subset(stratified_indices(test_pool.labels, config.test_size, config.seed))
    val = None
    if config.val_source == "holdout":
        left = len(train_pool) - train_idx.numel()
        if left == 0:
            raise DataError("no training images are left for a validation holdout; use --val-source none or test")
        val_idx = stratified_indices(train_pool.labels, min(config.val_size, left), config.seed + 1, exclude=train_idx)
        val = train_pool.subset(val_idx)
    elif config.val_source == "test":
        val = test
    return DataSplits(train_pool.subset(train_idx), val, test, config.val_source)
