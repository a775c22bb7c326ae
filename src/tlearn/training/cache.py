"""Frozen-feature cache: run the frozen part of the network once, then train only what is left.

When the backbone (or its stem up to a stage) is frozen and nothing random happens before it,
its output for an image never changes during training. Computing it once per image — in
inference mode, batched, channels_last — and training the remaining layers on the stored
activations gives the same result as recomputing it every epoch, at a fraction of the cost.

Activations are kept in memory and on disk (safetensors), keyed by a fingerprint of everything
they depend on: the frozen weights themselves, the preprocessing, the image size, the boundary
stage and the exact images. A second run on the same data reuses them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..config import TrainConfig
from ..data.augment import BatchPreprocessor
from ..data.dataset import DataSplits
from ..data.preprocessing import Preprocessing
from ..inference.engine import FOLD_MIN_SAMPLES, OutputRows, batched_inference
from ..models.folding import folded_copy
from ..models.transfer import TransferModel
from ..models.views import FrozenPart, runs_stage_by_stage
from ..paths import feature_cache_dir
from ..runtime import BatchSizeTuner, available_memory, eval_mode, inference_batch_size

WHOLE_BACKBONE = "backbone"
# The cache holds every split's activations in memory at once (and writes them to disk): above this
# share of the memory available at the start, training through the frozen part every step is the
# safer trade (ResNet-18 frozen to layer1 at 224 px: 800 KB an image, 48 GB for 60,000 images).
MEMORY_SHARE = 0.5
CACHE_FORMAT = 3  # 2: keyed on the whole Preprocessing; 3: pooled = the model's own pooling, [N, C]


@dataclass
class CachePlan:
    """Where the network is cut: ``boundary`` is a stage name, or ``backbone`` for all of it."""

    boundary: str
    stage_index: int  # -1 for the whole backbone
    views: int = 1  # >1: K augmented views per training image (an explicit approximation)
    pooled: bool = False  # linear head: store the pooled vector, not the whole feature map
    stats: dict = field(default_factory=dict)
    # What computes the activations: a BatchNorm-folded copy of the frozen part, built on first use.
    runner: Optional[nn.Module] = None
    # One CPU batch-size search for all the splits: each alone is often too small to tune on.
    tuner: BatchSizeTuner = field(default_factory=BatchSizeTuner)


def plan_cache(
    config: TrainConfig, model: TransferModel, prep: Preprocessing, splits: Optional[DataSplits] = None
) -> tuple[Optional[CachePlan], str]:
    """Decide whether caching applies; returns ``(plan or None, reason)``. With ``splits`` (the
    run's ``DataSplits``), a cache larger than ``MEMORY_SHARE`` of the available memory is refused."""
    plan, reason = _plan(config, model, prep)
    if plan is not None and splits is not None:
        too_large = _too_large(plan, model, prep, splits)
        if too_large:
            return None, too_large
    return plan, reason


def _too_large(plan: CachePlan, model: TransferModel, prep: Preprocessing, splits) -> Optional[str]:
    """Why the activations of every split would not fit in memory; None when they do (or it is unknown)."""
    available = available_memory()
    if available is None:
        return None
    x = torch.zeros(1, prep.in_chans, prep.image_size, prep.image_size, device=next(model.parameters()).device)
    with torch.no_grad(), eval_mode(model):
        per_image = FrozenPart(model, plan.stage_index, plan.pooled)(x).numel() * 4  # stored as float32
    images = len(splits.train) * plan.views + sum(len(s) for s in (splits.val, splits.test) if s is not None)
    needed = per_image * images
    if needed <= MEMORY_SHARE * available:
        return None
    return (
        f"the frozen activations of {images:,} images would take {_size(needed)}, more than half "
        f"of the {_size(available)} of memory available"
    )


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.1f} MB"


def _plan(config: TrainConfig, model: TransferModel, prep: Preprocessing) -> tuple[Optional[CachePlan], str]:
    if config.feature_cache == "off":
        return None, "turned off (--feature-cache off)"
    if config.schedule == "gradual":
        return None, "gradual unfreezing trains the backbone later"
    if not config.freeze.any:
        return None, "nothing is frozen"
    if config.mixup or config.cutmix:
        return None, "mixup/cutmix mix the images every step"
    if config.resize_from:
        return None, "progressive resizing changes the image size every epoch"
    views = 1
    if config.augment != "none":
        if config.cached_views < 1:
            return None, f"augmentation '{config.augment}' changes the frozen features every epoch (see --cached-views)"
        views = config.cached_views
    if config.freeze.kind == "backbone":
        # The linear head takes the backbone's pooled vector, so that is all the cache needs to
        # hold: H×W times less memory (49× at 224 px) and the same numbers.
        return CachePlan(WHOLE_BACKBONE, -1, views, pooled=model.head_input == "pooled"), "frozen backbone"
    stage = config.freeze.stage
    if not runs_stage_by_stage(model, prep):
        return None, f"{model.backbone.info.name} cannot be run stage by stage"
    return CachePlan(stage, model.backbone.stages.index(stage), views), f"frozen up to {stage}"


def _fingerprint(frozen: FrozenPart, prep, plan: CachePlan, split, augment_seed: Optional[int]) -> str:
    digest = hashlib.blake2b(digest_size=20)
    meta = {
        "format": CACHE_FORMAT,
        "torch": torch.__version__,
        "prep": prep.to_dict(),
        "boundary": plan.boundary,
        "views": plan.views,
        "pooled": plan.pooled,
        "augment_seed": augment_seed,
        "n": len(split),
    }
    digest.update(json.dumps(meta, sort_keys=True).encode())
    frozen_names = (
        frozen.model.backbone.stages if plan.stage_index < 0 else frozen.model.backbone.stages[: plan.stage_index + 1]
    )
    for name, tensor in frozen.model.backbone.model.state_dict().items():
        if plan.stage_index < 0 or frozen.model.backbone.stage_of(name) in frozen_names:
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    digest.update(split.fingerprint())
    return digest.hexdigest()


def extract(
    model: TransferModel,
    prep,
    plan: CachePlan,
    split,
    device: str,
    cache_dir: Optional[str],
    augment: Optional[BatchPreprocessor] = None,
    batch_size: Optional[int] = None,
) -> torch.Tensor:
    """Boundary activations of a split's images (``[views, N, …]`` when augmenting, else ``[N, …]``).

    Read from the disk cache when the fingerprint matches; computed and stored otherwise.
    """
    frozen = FrozenPart(model, plan.stage_index, plan.pooled)
    views = plan.views if augment is not None else 1
    key = _fingerprint(frozen, prep, plan, split, augment.generator.initial_seed() if augment else None)
    path = feature_cache_dir(cache_dir) / f"{key}.safetensors"
    stats = plan.stats.setdefault("splits", [])
    started = time.perf_counter()
    if path.is_file():
        from safetensors.torch import load_file

        try:
            features = load_file(str(path))["features"]
            stats.append(
                {"images": len(split), "views": views, "hit": True, "seconds": round(time.perf_counter() - started, 3)}
            )
            return features if augment is not None else features[0]
        except Exception:  # a damaged cache file is recomputed, never trusted
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
    preprocessor = BatchPreprocessor(prep)
    runner = frozen
    if len(split) >= FOLD_MIN_SAMPLES:  # folding here, not per split in batched_inference
        if plan.runner is None:  # folded once, shared by the train, val and test splits
            plan.runner = folded_copy(frozen, preprocessor(next(iter(split.batches(8))).to(device)))
        runner = plan.runner
    outputs = []
    for _ in range(views):
        if augment is None:
            outputs.append(
                batched_inference(runner, preprocessor, split, batch_size, device, fold=False, tuner=plan.tuner)
            )
        else:
            outputs.append(_augmented_view(runner, augment, split, batch_size, device))
    # One view: a view of the tensor, not a stacked copy (the 60k-image cache is large).
    features = outputs[0].unsqueeze(0) if views == 1 else torch.stack(outputs)
    del outputs
    _store(path, features)
    stats.append(
        {"images": len(split), "views": views, "hit": False, "seconds": round(time.perf_counter() - started, 3)}
    )
    return features if augment is not None else features[0]


def store_activations(model: TransferModel, prep, plan: CachePlan, split, cache_dir: Optional[str], features) -> None:
    """Store ``features``, the activations ``plan`` cuts ``split``'s images at (computed from a cut
    below it, say), where :func:`extract` looks for them: a run at ``plan`` then reads them."""
    frozen = FrozenPart(model, plan.stage_index, plan.pooled)
    key = _fingerprint(frozen, prep, plan, split, None)
    _store(feature_cache_dir(cache_dir) / f"{key}.safetensors", features.unsqueeze(0))


@torch.inference_mode()
def _augmented_view(
    frozen: nn.Module, augment: BatchPreprocessor, split, batch_size: Optional[int], device: str
) -> torch.Tensor:
    batch_size = batch_size or inference_batch_size(device)
    rows = OutputRows(len(split))
    with eval_mode(frozen):  # dropout in the trainable top must stay on for training
        for images in split.batches(batch_size):
            rows.add(frozen(augment(images.to(device), train=True)).float())
    return rows.result()


def _store(path: Path, features: torch.Tensor) -> None:
    """Write the activations atomically, streaming to a temporary file (no second copy in memory)."""
    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"features": features.contiguous()}, str(tmp))
        os.replace(tmp, path)
    except Exception:  # OSError, or safetensors' own I/O error
        try:  # a read-only or full cache dir only costs the reuse, never the run
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
