"""A split of a dataset, held as uint8 tensors or as image files.

``ImageSplit`` (tensors) and ``FileSplit`` (files decoded on demand) share one interface:
``item``/``batches`` give the images as stored (the batch preprocessor makes the model's view of
them), ``fingerprint`` a content hash for the feature cache, ``subset`` a selection and
``dataset`` a training ``Dataset``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .images import read_image
from .preprocessing import Preprocessing, center_crop


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
    """A split of image files too large to keep decoded: each item is decoded again when it is read.

    Items have the same form as those of the in-memory split the same files would give: photos
    as squares of the working size (the batch preprocessor crops them), other images resized to
    the input size.
    """

    def __init__(self, paths: list[Path], labels: torch.Tensor, classes: list[str], prep: Preprocessing):
        self.paths = list(paths)
        self.labels = labels
        self.classes = classes
        self.prep = prep

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def channels(self) -> int:
        return self.prep.data_channels

    def subset(self, indices: torch.Tensor) -> FileSplit:
        return FileSplit([self.paths[i] for i in indices.tolist()], self.labels[indices], self.classes, self.prep)

    def item(self, index: int) -> torch.Tensor:
        side = self.prep.working_side
        if side is not None:
            return center_crop(read_image(self.paths[index], self.prep.data_channels, side), side)
        from torchvision.transforms.v2 import functional as F

        size = self.prep.image_size
        return F.resize(read_image(self.paths[index], self.prep.data_channels), [size, size], antialias=True)

    def batches(self, batch_size: int):
        for start in range(0, len(self), batch_size):
            yield torch.stack([self.item(i) for i in range(start, min(start + batch_size, len(self)))])

    def fingerprint(self) -> bytes:
        digest = hashlib.blake2b(digest_size=20)
        digest.update(repr((self.prep.image_size, self.prep.crop_pct, self.prep.data_channels)).encode())
        for path in self.paths:
            stat = path.stat()
            digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        return digest.digest()

    def dataset(self, train: bool, transform=None) -> Dataset:
        return _FileDataset(self, transform if train else None)


class _FileDataset(Dataset):
    def __init__(self, split: FileSplit, transform=None):
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        image = self.split.item(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.split.labels[index]
