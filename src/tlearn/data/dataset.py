"""A run's dataset: which source its config names, and the seeded train/val/test splits cut from it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from ..errors import DataError
from ..paths import data_root
from .builtin import load_cifar, load_svhn
from .folders import read_csv_dataset, scan_folder
from .idx import IDX_DATASETS, load_idx
from .preprocessing import Preprocessing
from .sampling import stratified_indices
from .splits import FileSplit, ImageSplit


@dataclass
class DataSplits:
    """The train/val/test splits of a run, what was used for validation, and the files left out."""

    train: ImageSplit | FileSplit
    val: Optional[ImageSplit | FileSplit]
    test: ImageSplit | FileSplit
    val_source: str
    skipped: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return self.train.classes


def load_pools(config, prep: Optional[Preprocessing] = None) -> tuple:
    """``(train, val or None, test or None, skipped files)`` of the dataset named in ``config``.

    ``prep`` is needed for datasets of image files (folders, CSV): they decode at its size.
    """
    root = data_root(config.data_dir)
    if config.dataset in IDX_DATASETS:
        return load_idx(root, True, config.dataset), None, load_idx(root, False, config.dataset), []
    if config.dataset in ("cifar10", "cifar100"):
        return load_cifar(root, config.dataset, True), None, load_cifar(root, config.dataset, False), []
    if config.dataset == "svhn":
        return load_svhn(root, True), None, load_svhn(root, False), []
    if prep is None:
        raise ValueError("datasets of image files need the run's preprocessing")
    if config.dataset == "csv":
        if not config.data_file:
            raise DataError("--dataset csv needs --data-file FILE.csv (columns: path,label)")
        split, skipped = read_csv_dataset(Path(config.data_file).expanduser(), prep)
        return split, None, None, skipped.paths
    if not config.data_dir:
        raise DataError("--dataset folder needs --data-dir DIR holding train/<class>/<images> (optional val/, test/)")
    found, skipped = scan_folder(root, prep)
    return found["train"], found.get("val"), found.get("test"), skipped.paths


def _check_size(option: str, wanted: Optional[int], available: int, what: str) -> None:
    if wanted is not None and wanted > available:
        raise DataError(f"--{option} {wanted} is more than the {available} {what} images available")


def build_splits(config, prep: Optional[Preprocessing] = None) -> DataSplits:
    """Load the dataset named in ``config`` and cut the seeded train/val/test subsets.

    A folder without ``test/`` tests on ``val/``; one with neither holds out a seeded, stratified
    20 % of ``train/`` as the test split. Validation (``--val-source holdout``) comes from ``val/``
    when there is one, else from training images that are not in the training subset.
    """
    train_pool, val_pool, test_pool, skipped = load_pools(config, prep)
    if test_pool is None and val_pool is not None:
        test_pool, val_pool = val_pool, None
    elif test_pool is None:
        test_idx = stratified_indices(train_pool.labels, max(1, len(train_pool) // 5), config.seed + 2)
        test_pool = train_pool.subset(test_idx)
        train_pool = train_pool.subset(stratified_indices(train_pool.labels, None, 0, exclude=test_idx))
    _check_size("test-size", config.test_size, len(test_pool), "test")
    test = test_pool.subset(stratified_indices(test_pool.labels, config.test_size, config.seed))
    holdout = config.val_source == "holdout" and val_pool is None
    train_size = config.train_size
    if holdout and (train_size is None or train_size == len(train_pool)):
        # leave room for validation
        train_size = len(train_pool) - min(config.val_size, max(1, len(train_pool) // 5))
    _check_size("train-size", train_size, len(train_pool), "training")
    train_idx = stratified_indices(train_pool.labels, train_size, config.seed)
    val = None
    if config.val_source == "holdout" and val_pool is not None:
        val_idx = stratified_indices(val_pool.labels, min(config.val_size, len(val_pool)), config.seed + 1)
        val = val_pool.subset(val_idx)
    elif holdout:
        left = len(train_pool) - train_idx.numel()
        if left == 0:
            raise DataError("no training images are left for a validation holdout; use --val-source none or test")
        val_idx = stratified_indices(train_pool.labels, min(config.val_size, left), config.seed + 1, exclude=train_idx)
        val = train_pool.subset(val_idx)
    elif config.val_source == "test":
        val = test
    splits = DataSplits(train_pool.subset(train_idx), val, test, config.val_source, skipped)
    _warn_if_imbalanced(splits.train)
    return splits


# A largest class this many times the smallest is worth a word about the options that handle it.
IMBALANCE_RATIO = 5


def _warn_if_imbalanced(train) -> None:
    counts = torch.bincount(train.labels, minlength=len(train.classes))
    smallest, largest = int(counts.min()), int(counts.max())
    if smallest and largest >= IMBALANCE_RATIO * smallest:
        big, small = train.classes[int(counts.argmax())], train.classes[int(counts.argmin())]
        warnings.warn(
            f"imbalanced training set: '{big}' has {largest} images, '{small}' {smallest}; "
            "consider --class-weights auto or --sampler balanced (balanced accuracy is reported)",
            stacklevel=2,
        )
