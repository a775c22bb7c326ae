"""Everything a run needs before training: device, preprocessing, data, model, and what the
trainer is fed (raw images, or the activations the feature cache stored for the frozen part)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset, WeightedRandomSampler

from ..config import TrainConfig
from ..data.augment import BatchPreprocessor, randaugment_transform
from ..data.dataset import DataSplits, build_splits
from ..data.preprocessing import Preprocessing, resolve_preprocessing
from ..data.splits import FileSplit
from ..models.backbones import backbone_info, create_backbone
from ..models.transfer import TransferModel, build_model
from ..runtime import resolve_device, seed_everything
from .cache import CachePlan, FoldedStemModel, TopModel, extract, plan_cache, runs_stage_by_stage
from .distributed import is_distributed, launch_rank, local_rank, per_process_batch


@dataclass
class Prepared:
    """Everything a run needs before training: device, preprocessing, data splits and model."""

    device: str
    prep: Preprocessing
    splits: DataSplits
    model: TransferModel


def build_transfer_model(config: TrainConfig, prep: Preprocessing, num_classes: int) -> TransferModel:
    """Backbone + head + freezing, exactly as ``config`` says, for inputs prepared by ``prep``."""
    backbone = create_backbone(config.backbone, config.weights, in_chans=config.in_chans)
    model = build_model(backbone, prep, num_classes, config.head, config.dropout, config.head_hidden)
    model.freeze(config.freeze)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def prepare(config: TrainConfig) -> Prepared:
    """Resolve the device and the preprocessing, load the splits, build the model.

    Call it where a run starts (inside ``distributed.launch_environment``): it seeds every
    random generator with ``--seed``.
    """
    device = resolve_device(config.device)
    if device == "cuda" and is_distributed(config):
        torch.cuda.set_device(local_rank())  # each rank extracts features on its own GPU, not all on cuda:0
    prep = resolve_preprocessing(config, backbone_info(config.backbone))  # fails on a bad name before any data
    seed_everything(config.seed)
    splits = build_splits(config, prep)
    return Prepared(device, prep, splits, build_transfer_model(config, prep, len(splits.classes)))


@dataclass
class FitInputs:
    """What training is fed (by Lightning or the head loop) and the test set: raw images or cached activations."""

    module: nn.Module
    preprocessor: Optional[BatchPreprocessor]
    train_loader: DataLoader
    val_loader: Optional[DataLoader]
    test_inputs: object  # a split (images) or a tensor of cached activations
    cache: dict

    def generators(self) -> dict[str, torch.Generator]:
        """The random generators whose state an exact resume must restore."""
        found = {}
        shuffle = self.train_loader.generator or getattr(self.train_loader.sampler, "generator", None)
        if shuffle is not None:
            found["shuffle"] = shuffle
        if self.preprocessor is not None:
            found["augment"] = self.preprocessor.generator
        return found


@dataclass
class Fitted:
    """How training went, whichever loop ran it (Lightning's Trainer or :mod:`.head_fit`)."""

    rows: list[dict]  # one per finished epoch
    interrupted: bool  # Ctrl-C stopped it
    seconds: float
    restore_best: Optional[Callable[[], int]] = None  # loads the best validation epoch's weights, returns its number
    stopped_early: bool = False
    main: bool = True  # rank 0, or the only process: it evaluates and writes the run
    processes: int = 1
    loggers: list = field(default_factory=list)  # Lightning's loggers, for the final test scores
    resumable: bool = True  # checkpoints/last.ckpt holds what --resume needs
    trainer: str = "lightning"


def fit_inputs(config: TrainConfig, p: Prepared) -> FitInputs:
    """Cached activations when the frozen part allows it exactly, else the plain image path."""
    plan, reason = plan_cache(config, p.model, p.prep, p.splits)
    started = time.perf_counter()
    if plan:
        fit = _cached_inputs(config, p, plan)
    else:
        fit = _image_inputs(config, p, reason)
    fit.cache.update(reason=reason, seconds=round(time.perf_counter() - started, 3))
    return fit


def auto_workers(augment: str, splits: DataSplits) -> int:
    """Worker processes only pay off for per-sample work in the dataset (RandAugment, or decoding
    files too many to keep in memory); the rest is batched in-process.

    tlearn never changes torch's thread count, so ``torch.set_num_threads``/``OMP_NUM_THREADS`` hold.
    """
    if augment != "randaugment" and not isinstance(splits.train, FileSplit):
        return 0
    return min(4, max(0, (os.cpu_count() or 1) - 1))


def train_sampler(config: TrainConfig, labels: torch.Tensor, draws: int, generator: torch.Generator):
    """How an epoch draws ``draws`` training examples from ``labels`` (one per dataset entry).

    ``balanced``: with replacement, each class equally often; with cached views (more entries than
    draws), a random subset; otherwise None (the loader shuffles).
    """
    if config.sampler == "balanced":
        per_class = torch.bincount(labels).double()
        return WeightedRandomSampler(1.0 / per_class[labels], draws, replacement=True, generator=generator)
    if labels.numel() != draws:
        return EpochSubsetSampler(labels.numel(), draws, generator)
    return None


def _image_loaders(config: TrainConfig, splits: DataSplits) -> tuple[DataLoader, Optional[DataLoader]]:
    """Seeded shuffling (or sampling) for training; per-sample RandAugment runs in the dataset when asked for."""
    transform = randaugment_transform() if config.augment == "randaugment" else None
    generator = torch.Generator().manual_seed(config.seed)
    workers = config.num_workers if config.num_workers is not None else auto_workers(config.augment, splits)
    common = {"batch_size": per_process_batch(config), "num_workers": workers, "persistent_workers": workers > 0}
    sampler = train_sampler(config, splits.train.labels, len(splits.train), generator)
    dataset = splits.train.dataset(True, transform)
    train = DataLoader(dataset, shuffle=sampler is None, sampler=sampler, generator=generator, **common)
    val = DataLoader(splits.val.dataset(False), shuffle=False, **common) if splits.val is not None else None
    return train, val


def _image_inputs(config: TrainConfig, p: Prepared, reason: str) -> FitInputs:
    """The plain path: every epoch runs the whole network on freshly preprocessed images."""
    train_loader, val_loader = _image_loaders(config, p.splits)
    # Under DDP each rank draws its own augmentations (its shard of images differs anyway).
    preprocessor = BatchPreprocessor(p.prep, config.augment, config.seed + launch_rank(config))
    cache = {"used": False, "reason": reason}
    return FitInputs(_image_module(config, p), preprocessor, train_loader, val_loader, p.splits.test, cache)


def _image_module(config: TrainConfig, p: Prepared) -> nn.Module:
    """What the image path trains: the model, or with a frozen stem that stays frozen, the model
    with that stem run as a folded copy (:class:`~.cache.FoldedStemModel`)."""
    if config.freeze.kind != "until" or config.schedule == "gradual" or config.compile:
        return p.model
    if not runs_stage_by_stage(p.model, p.prep):
        return p.model
    return FoldedStemModel(p.model, p.model.backbone.stages.index(config.freeze.stage))


def _cached_inputs(config: TrainConfig, p: Prepared, plan: CachePlan) -> FitInputs:
    """The cached path: the frozen part runs once per image; only the top trains."""
    model, splits, device = p.model, p.splits, p.device
    model.to(torch.device(device))
    augmenting = plan.views > 1 or config.augment != "none"
    augment = BatchPreprocessor(p.prep, config.augment, config.seed) if augmenting else None
    train = extract(model, p.prep, plan, splits.train, device, config.cache_dir, augment=augment)
    labels = splits.train.labels
    generator = torch.Generator().manual_seed(config.seed)
    batch = per_process_batch(config)
    if augment is not None:  # [views, N, …]: each epoch draws N of the N×views (image, view) pairs
        train, labels = train.flatten(0, 1), labels.repeat(train.shape[0])
    sampler = train_sampler(config, labels, len(splits.train), generator)
    train_loader = DataLoader(
        CachedTensors(train, labels),
        batch_size=batch,
        shuffle=sampler is None,
        sampler=sampler,
        generator=generator,
        collate_fn=already_batched,
    )
    val_loader = None
    if splits.val is not None:
        val = extract(model, p.prep, plan, splits.val, device, config.cache_dir)
        # Validation only averages over samples, so its batch size changes no number; when only
        # the head is left to run, a large one saves most of the per-step loop overhead.
        val_batch = max(512, batch) if plan.stage_index < 0 else batch
        val_loader = DataLoader(CachedTensors(val, splits.val.labels), batch_size=val_batch, collate_fn=already_batched)
    test = extract(model, p.prep, plan, splits.test, device, config.cache_dir)
    plan.runner = None  # the folded copy is no longer needed
    model.cpu()
    cache = {
        "used": True,
        "boundary": plan.boundary,
        "views": plan.views,
        "pooled": plan.pooled,
        "feature_shape": list(test.shape[1:]),
        "splits": plan.stats.get("splits", []),
    }
    top = TopModel(model, plan.stage_index, plan.pooled, config.channels_last)
    return FitInputs(top, None, train_loader, val_loader, test, cache)


class CachedTensors(TensorDataset):
    """Cached activations and their labels, fetched a batch at a time: one indexing per tensor
    instead of one per sample and a stack (a cached head's 640 steps: 0.52 → 0.48 s)."""

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
