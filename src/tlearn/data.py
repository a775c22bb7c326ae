"""Datasets: locating, reading and subsetting MNIST, kept as uint8 tensors.

Images stay uint8 ``[N, 1, 28, 28]`` in memory (47 MB for all 60k); resizing, normalisation and
augmentation happen later on batches (see ``transforms.py``), so the upsampled dataset is never
materialised.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch.utils.data import Dataset, Sampler

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
    """A split held as uint8 images ``[N, C, H, W]`` and int64 labels ``[N]``.

    Shares its interface with :class:`~tlearn.datasets.FileSplit` (images decoded from files):
    ``item``, ``batches``, ``fingerprint`` and ``dataset`` give the evaluation view, batches of it,
    a content hash for the feature cache, and a training ``Dataset``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return int(self.labels.numel())

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    def subset(self, indices: torch.Tensor) -> "ImageSplit":
        return ImageSplit(self.images[indices], self.labels[indices], self.classes)

    def configure(self, image_size: int, crop_pct: float) -> None:
        """Nothing to do: tensor images are resized per batch by the preprocessor."""

    def item(self, index: int) -> torch.Tensor:
        return self.images[index]

    def batches(self, batch_size: int):
        for start in range(0, len(self), batch_size):
            yield self.images[start : start + batch_size]

    def fingerprint(self) -> bytes:
        digest = hashlib.blake2b(digest_size=20)
        digest.update(repr(tuple(self.images.shape)).encode())
        digest.update(self.images.contiguous().numpy().tobytes())
        return digest.digest()

    def dataset(self, train: bool, extra=None) -> Dataset:
        return UInt8ImageDataset(self, extra if train else None)


def _mnist_missing(raw: Path) -> list[str]:
    return [f for f in MNIST_FILES if not (raw / f).is_file() and not (raw / f"{f}.gz").is_file()]


def _download_mnist(root: Path, name: str = "mnist") -> None:
    from torchvision import datasets as tvd

    title = IDX_DATASETS[name]
    raw = root / title / "raw"
    if offline_mode():
        raise DataError(f"{title} not found in {raw} and offline mode is set; put {', '.join(MNIST_FILES)} there")
    try:
        getattr(tvd, title)(str(root), train=True, download=True)
    except Exception as err:  # network errors come in many types (URLError, socket, HTTP)
        raise DataError(
            f"{title} not found in {raw} and downloading failed ({type(err).__name__}); "
            f"put {', '.join(MNIST_FILES)} there or pass --data-dir / set TLEARN_DATA_DIR"
        ) from None


IDX_DATASETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}


def load_mnist(root: Path, train: bool, name: str = "mnist") -> ImageSplit:
    """Read one split of an IDX dataset from ``root/<Name>/raw`` (torchvision layout).

    ``name``: mnist | fashion-mnist | kmnist. Downloads when missing and online.
    """
    from torchvision.datasets.mnist import read_image_file, read_label_file

    if not root.exists() and root != resolve_data_dir(None):
        raise DataError(f"data directory does not exist: {root} (set --data-dir or TLEARN_DATA_DIR)")
    raw = root / IDX_DATASETS[name] / "raw"
    if _mnist_missing(raw):
        _download_mnist(root, name)
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
    from .datasets import FASHION_CLASSES, KMNIST_CLASSES

    classes = {"mnist": MNIST_CLASSES, "fashion-mnist": FASHION_CLASSES, "kmnist": KMNIST_CLASSES}[name]
    return ImageSplit(images.unsqueeze(1).contiguous(), labels.long(), list(classes))


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


def load_pools(config) -> tuple:
    """``(train, val or None, test or None)`` pools of the dataset named in ``config``."""
    from .datasets import load_cifar, load_svhn, read_csv_dataset, scan_folder

    root = resolve_data_dir(config.data_dir)
    if config.dataset in IDX_DATASETS:
        return load_mnist(root, True, config.dataset), None, load_mnist(root, False, config.dataset)
    if config.dataset in ("cifar10", "cifar100"):
        return load_cifar(root, config.dataset, True), None, load_cifar(root, config.dataset, False)
    if config.dataset == "svhn":
        return load_svhn(root, True), None, load_svhn(root, False)
    if config.dataset == "csv":
        if not config.data_file:
            raise DataError("--dataset csv needs --data-file FILE.csv (columns: path,label)")
        return read_csv_dataset(Path(config.data_file).expanduser()), None, None
    if not config.data_dir:
        raise DataError("--dataset folder needs --data-dir DIR holding train/<class>/<images> (optional val/, test/)")
    found = scan_folder(root)
    return found["train"], found.get("val"), found.get("test")


def _check_size(option: str, wanted: Optional[int], available: int, what: str) -> None:
    if wanted is not None and wanted > available:
        raise DataError(f"--{option} {wanted} is more than the {available} {what} images available")


def build_splits(config) -> DataSplits:
    """Load the dataset named in ``config`` and cut the seeded train/val/test subsets.

    A folder without ``test/`` tests on ``val/``; one with neither holds out a seeded, stratified
    20 % of ``train/`` as the test split. Validation (``--val-source holdout``) comes from ``val/``
    when there is one, else from training images that are not in the training subset.
    """
    train_pool, val_pool, test_pool = load_pools(config)
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
        train_size = len(train_pool) - min(config.val_size, max(1, len(train_pool) // 5))  # leave room for validation
    _check_size("train-size", train_size, len(train_pool), "training")
    train_idx = stratified_indices(train_pool.labels, train_size, config.seed)
    val = None
    if config.val_source == "holdout" and val_pool is not None:
        val = val_pool.subset(stratified_indices(val_pool.labels, min(config.val_size, len(val_pool)), config.seed + 1))
    elif holdout:
        left = len(train_pool) - train_idx.numel()
        if left == 0:
            raise DataError("no training images are left for a validation holdout; use --val-source none or test")
        val = train_pool.subset(stratified_indices(train_pool.labels, min(config.val_size, left), config.seed + 1, exclude=train_idx))
    elif config.val_source == "test":
        val = test
    return DataSplits(train_pool.subset(train_idx), val, test, config.val_source)


class EpochSubsetSampler(Sampler):
    """Each epoch, ``num_samples`` of ``size`` indices drawn at random without replacement.

    Draws what ``RandomSampler(num_samples=...)`` draws, but is not one on purpose: under DDP
    Lightning swaps a RandomSampler for a DistributedSampler over the whole dataset (an epoch
    would then cover all N x K cached views), while other samplers are wrapped and split by rank.
    """

    def __init__(self, size: int, num_samples: int, generator: torch.Generator):
        self.size, self.num_samples, self.generator = size, num_samples, generator

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        return iter(torch.randperm(self.size, generator=self.generator)[: self.num_samples].tolist())
