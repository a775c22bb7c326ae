"""Data loaders of a run: seeded shuffling or sampling, and batches of cached tensors fetched whole.

Batches of images arrive as uint8 tensors and are preprocessed on the device by
:class:`~.augment.BatchPreprocessor`, so the loaders themselves stay trivial; per-sample work
(RandAugment, decoding files too many to keep in memory) is what worker processes are for.
"""

from __future__ import annotations

import os
from typing import Optional

import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset, WeightedRandomSampler

from .augment import randaugment_transform
from .dataset import DataSplits
from .splits import FileSplit


def auto_workers(augment: str, splits: DataSplits) -> int:
    """Worker processes only pay off for per-sample work in the dataset (RandAugment, or decoding
    files too many to keep in memory); the rest is batched in-process.

    tlearn never changes torch's thread count, so ``torch.set_num_threads``/``OMP_NUM_THREADS`` hold.
    """
    if augment != "randaugment" and not isinstance(splits.train, FileSplit):
        return 0
    return min(4, max(0, (os.cpu_count() or 1) - 1))


def train_sampler(balanced: bool, labels: torch.Tensor, draws: int, generator: torch.Generator):
    """How an epoch draws ``draws`` training examples from ``labels`` (one per dataset entry).

    ``balanced``: with replacement, each class equally often; with cached views (more entries than
    draws), a random subset; otherwise None (the loader shuffles).
    """
    if balanced:
        per_class = torch.bincount(labels).double()
        return WeightedRandomSampler(1.0 / per_class[labels], draws, replacement=True, generator=generator)
    if labels.numel() != draws:
        return EpochSubsetSampler(labels.numel(), draws, generator)
    return None


def image_loaders(
    splits: DataSplits,
    batch_size: int,
    seed: int,
    augment: str,
    balanced: bool,
    workers: Optional[int],
) -> tuple[DataLoader, Optional[DataLoader]]:
    """Training and validation loaders over the image splits: seeded shuffling (or sampling) for
    training; per-sample RandAugment runs in the dataset when ``augment`` asks for it.
    ``workers`` None picks :func:`auto_workers`."""
    transform = randaugment_transform() if augment == "randaugment" else None
    generator = torch.Generator().manual_seed(seed)
    workers = workers if workers is not None else auto_workers(augment, splits)
    common = {"batch_size": batch_size, "num_workers": workers, "persistent_workers": workers > 0}
    sampler = train_sampler(balanced, splits.train.labels, len(splits.train), generator)
    dataset = splits.train.dataset(True, transform)
    train = DataLoader(dataset, shuffle=sampler is None, sampler=sampler, generator=generator, **common)
    val = DataLoader(splits.val.dataset(False), shuffle=False, **common) if splits.val is not None else None
    return train, val


def tensor_loader(
    inputs: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    generator: Optional[torch.Generator] = None,
    sampler: Optional[Sampler] = None,
) -> DataLoader:
    """Batches of stored tensors; shuffled by ``generator`` (or drawn by ``sampler``) when given one."""
    shuffle = generator is not None and sampler is None
    return DataLoader(
        CachedTensors(inputs, labels),
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        generator=generator,
        collate_fn=already_batched,
    )


class CachedTensors(TensorDataset):
    """Cached activations and their labels, fetched a batch at a time: one indexing per tensor
    instead of one per sample and a stack."""

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices)
        return tuple(tensor[index] for tensor in self.tensors)


def already_batched(batch):
    """The loader's collate step for :class:`CachedTensors`, whose fetch returns the batch itself."""
    return batch


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
