"""What the trainer is fed: raw images through the whole network, or the activations the feature
cache stored for the frozen part (then only the part above it trains)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..config import TrainConfig
from ..data.augment import BatchPreprocessor
from ..data.dataset import DataSplits
from ..data.loaders import image_loaders, tensor_loader, train_sampler
from ..data.preprocessing import Preprocessing
from ..models.transfer import TransferModel
from ..models.views import FoldedStemModel, TopModel, runs_stage_by_stage
from .cache import WHOLE_BACKBONE, CachePlan, extract, plan_cache
from .distributed import launch_rank, per_process_batch


@dataclass
class CacheReport:
    """Whether the feature cache fed the run, why (not), and what it held (``metrics.json``'s ``feature_cache``)."""

    used: bool
    reason: str
    seconds: float = 0.0
    boundary: Optional[str] = None  # a stage name, or ``backbone`` for all of it
    views: int = 1
    pooled: bool = False
    feature_shape: list[int] = field(default_factory=list)
    splits: list[dict] = field(default_factory=list)  # per split extracted: images, views, hit, seconds

    @property
    def whole_backbone(self) -> bool:
        """The cache holds the whole backbone's output: only the head trains."""
        return self.used and self.boundary == WHOLE_BACKBONE

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Feed:
    """What training is fed (by Lightning or the head loop) and the test set: raw images or cached activations."""

    module: nn.Module  # what trains: the model, or the part above the cache boundary
    preprocessor: Optional[BatchPreprocessor]  # None on cached activations (already model-ready)
    train_loader: DataLoader
    val_loader: Optional[DataLoader]
    test_inputs: object  # a split (images) or a tensor of cached activations
    cache: CacheReport

    def generators(self) -> dict[str, torch.Generator]:
        """The random generators whose state an exact resume must restore."""
        found = {}
        shuffle = self.train_loader.generator or getattr(self.train_loader.sampler, "generator", None)
        if shuffle is not None:
            found["shuffle"] = shuffle
        if self.preprocessor is not None:
            found["augment"] = self.preprocessor.generator
        return found

    def first_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``batch_size`` training examples, in dataset order (what a probe step trains on)."""
        from torch.utils.data import default_collate

        loader = self.train_loader
        size = min(loader.batch_size or 1, len(loader.dataset))
        return default_collate([loader.dataset[i] for i in range(size)])


def build_feed(
    config: TrainConfig, model: TransferModel, preprocessing: Preprocessing, splits: DataSplits, device: str
) -> Feed:
    """Cached activations when the frozen part allows it exactly, else the plain image path."""
    plan, reason = plan_cache(config, model, preprocessing, splits)
    started = time.perf_counter()
    if plan:
        feed = _cached_feed(config, model, preprocessing, splits, device, plan)
    else:
        feed = _image_feed(config, model, preprocessing, splits)
    feed.cache.reason = reason
    feed.cache.seconds = round(time.perf_counter() - started, 3)
    return feed


def _image_feed(config: TrainConfig, model: TransferModel, preprocessing: Preprocessing, splits: DataSplits) -> Feed:
    """The plain path: every epoch runs the whole network on freshly preprocessed images."""
    train_loader, val_loader = image_loaders(
        splits, per_process_batch(config), config.seed, config.augment, config.sampler == "balanced", config.num_workers
    )
    # Under DDP each rank draws its own augmentations (its shard of images differs anyway).
    preprocessor = BatchPreprocessor(preprocessing, config.augment, config.seed + launch_rank(config))
    module = _image_module(config, model, preprocessing)
    return Feed(module, preprocessor, train_loader, val_loader, splits.test, CacheReport(used=False, reason=""))


def _image_module(config: TrainConfig, model: TransferModel, preprocessing: Preprocessing) -> nn.Module:
    """What the image path trains: the model, or with a frozen stem that stays frozen, the model
    with that stem run as a folded copy (:class:`~tlearn.models.views.FoldedStemModel`)."""
    if config.freeze.kind != "until" or config.schedule == "gradual" or config.compile:
        return model
    if not runs_stage_by_stage(model, preprocessing):
        return model
    return FoldedStemModel(model, model.backbone.stages.index(config.freeze.stage))


def _cached_feed(
    config: TrainConfig,
    model: TransferModel,
    preprocessing: Preprocessing,
    splits: DataSplits,
    device: str,
    plan: CachePlan,
) -> Feed:
    """The cached path: the frozen part runs once per image; only the top trains."""
    model.to(torch.device(device))
    augmenting = plan.views > 1 or config.augment != "none"
    augment = BatchPreprocessor(preprocessing, config.augment, config.seed) if augmenting else None
    train = extract(model, preprocessing, plan, splits.train, device, config.cache_dir, augment=augment)
    labels = splits.train.labels
    generator = torch.Generator().manual_seed(config.seed)
    batch = per_process_batch(config)
    if augment is not None:  # [views, N, …]: each epoch draws N of the N×views (image, view) pairs
        train, labels = train.flatten(0, 1), labels.repeat(train.shape[0])
    sampler = train_sampler(config.sampler == "balanced", labels, len(splits.train), generator)
    train_loader = tensor_loader(train, labels, batch, generator, sampler)
    val_loader = None
    if splits.val is not None:
        val = extract(model, preprocessing, plan, splits.val, device, config.cache_dir)
        # Validation only averages over samples, so its batch size changes no number; when only
        # the head is left to run, a large one saves most of the per-step loop overhead.
        val_batch = max(512, batch) if plan.stage_index < 0 else batch
        val_loader = tensor_loader(val, splits.val.labels, val_batch)
    test = extract(model, preprocessing, plan, splits.test, device, config.cache_dir)
    plan.runner = None  # the folded copy is no longer needed
    model.cpu()
    report = CacheReport(
        used=True,
        reason="",
        boundary=plan.boundary,
        views=plan.views,
        pooled=plan.pooled,
        feature_shape=list(test.shape[1:]),
        splits=plan.stats.get("splits", []),
    )
    top = TopModel(model, plan.stage_index, plan.pooled, config.channels_last)
    return Feed(top, None, train_loader, val_loader, test, report)
