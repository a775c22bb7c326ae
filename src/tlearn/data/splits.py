"""A split of a dataset, held as uint8 tensors or as image files.

``ImageSplit`` (tensors) and ``FileSplit`` (files decoded on demand) share one interface:
``item``/``batches`` give the evaluation view, ``fingerprint`` a content hash for the feature
cache, ``subset`` a selection and ``dataset`` a training ``Dataset``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .augment import photo_train_view
from .images import read_image
from .preprocessing import Preprocessing, eval_view


@dataclass
class ImageSplit:
    """A split held as uint8 images ``[N, C, H, W]`` and int64 labels ``[N]``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return int(self.labels.numel())

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    def subset(self, indices: torch.Tensor) -> ImageSplit:
        return ImageSplit(self.images[indices], self.labels[indices], self.classes)

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

    def dataset(self, train: bool, transform=None) -> Dataset:
        """``(uint8 image, label)`` pairs; ``transform`` (per-sample, uint8) applies to training only."""
        return _TensorDataset(self, transform if train else None)


class _TensorDataset(Dataset):
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


class FileSplit:
    """A split of image files, decoded on demand at the size ``prep`` asks for."""

    channels = 3

    def __init__(self, paths: list[Path], labels: torch.Tensor, classes: list[str], prep: Preprocessing):
        self.paths = list(paths)
        self.labels = labels
        self.classes = classes
        self.prep = prep

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: torch.Tensor) -> FileSplit:
        return FileSplit([self.paths[i] for i in indices.tolist()], self.labels[indices], self.classes, self.prep)

    def read(self, index: int) -> torch.Tensor:
        return read_image(self.paths[index], 3)

    def item(self, index: int) -> torch.Tensor:
        """Evaluation view: resize the short side to size/crop_pct, then centre-crop."""
        return eval_view(self.read(index), self.prep)

    def batches(self, batch_size: int):
        for start in range(0, len(self), batch_size):
            yield torch.stack([self.item(i) for i in range(start, min(start + batch_size, len(self)))])

    def fingerprint(self) -> bytes:
        digest = hashlib.blake2b(digest_size=20)
        digest.update(repr((self.prep.image_size, self.prep.crop_pct)).encode())
        for path in self.paths:
            stat = path.stat()
            digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        return digest.digest()

    def dataset(self, train: bool, transform=None) -> Dataset:
        return _FileDataset(self, train, transform)


class _FileDataset(Dataset):
    def __init__(self, split: FileSplit, train: bool, transform=None):
        self.split = split
        self.train = train
        self.random_crop = photo_train_view(split.prep.image_size)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        image = self.random_crop(self.split.read(index)) if self.train else self.split.item(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.split.labels[index]
