"""Batched tensor preprocessing: resize, grey→RGB, augmentation and normalisation.

Everything here works on uint8 batches straight from the data loader, on whatever device the
batch lives on. Random augmentations draw their own parameters for every sample, but build a
single ``affine_grid``/``grid_sample`` call for the whole batch, which also does the resize:
one pass instead of a per-image PIL pipeline.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from .preprocessing import Preprocessing, center_crop


def _affine_params(kind: str, n: int, gen: torch.Generator) -> torch.Tensor:
    """Per-sample 2×3 matrices mapping output to input coordinates (normalised [-1, 1])."""

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=gen) * (high - low) + low

    zeros, ones = torch.zeros(n), torch.ones(n)
    if kind == "seed":
        # Keras ImageDataGenerator(shear_range=0.2, zoom_range=0.2, horizontal_flip=True):
        # shear in degrees, independent x/y zoom factors applied to the sampling grid, and a
        # horizontal flip half of the time.
        shear = uniform(-0.2, 0.2) * math.pi / 180.0
        zx, zy = uniform(0.8, 1.2), uniform(0.8, 1.2)
        flip = torch.where(torch.rand(n, generator=gen) < 0.5, -ones, ones)
        a = torch.stack([zx * flip, -torch.sin(shear) * zy, zeros], 1)
        b = torch.stack([zeros, torch.cos(shear) * zy, zeros], 1)
        return torch.stack([a, b], 1)
    # "digits": rotation ±10°, scale 0.9–1.1, translation ±10 % of the side; never flips.
    angle = uniform(-10.0, 10.0) * math.pi / 180.0
    inv_scale = 1.0 / uniform(0.9, 1.1)
    tx, ty = uniform(-0.2, 0.2), uniform(-0.2, 0.2)
    cos, sin = torch.cos(angle) * inv_scale, torch.sin(angle) * inv_scale
    return torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)


class BatchPreprocessor:
    """Turns uint8 ``[B, C, H, W]`` batches into normalised float inputs of the model.

    ``augment`` applies only when ``train=True``. The affine augmentations (``seed``, ``digits``)
    draw their parameters from a seeded generator of their own; ``photo`` runs torchvision's
    per-image transforms, which draw from torch's global generator (seeded at the start of a run
    and saved in every checkpoint). Photos (a preprocessing with a crop) arrive as squares of the
    working size: evaluation takes their centre, training a random resized crop.
    """

    def __init__(self, prep: Preprocessing, augment: str = "none", seed: int = 0):
        self.prep = prep
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed + 12345)
        self._stats: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._photo = photo_train_view(prep.image_size) if augment == "photo" else None
        self.train_size: Optional[int] = None  # progressive resizing: the side of training batches this epoch

    def _mean_std(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._stats:
            mean = torch.tensor(self.prep.mean, device=device).view(1, -1, 1, 1)
            std = torch.tensor(self.prep.std, device=device).view(1, -1, 1, 1)
            self._stats[device] = (mean, std)
        return self._stats[device]

    def __call__(
        self,
        images: torch.Tensor,
        train: bool = False,
        dtype: Optional[torch.dtype] = None,
        shift: Optional[tuple[float, float]] = None,
    ) -> torch.Tensor:
        """``shift``: an evaluation view moved by ``(dx, dy)`` in ``affine_grid`` units (see :func:`tta_shifts`)."""
        size = self.train_size if train and self.train_size else self.prep.image_size
        if train and self._photo is not None:
            images = torch.stack([self._photo(image) for image in images])
        elif self.prep.crop_pct is not None and min(images.shape[-2:]) > self.prep.image_size:
            images = center_crop(images, self.prep.image_size)
        x = images.to(torch.float32) / 255.0 if images.dtype == torch.uint8 else images.to(torch.float32)
        x = self._match_channels(x)
        if train and self.augment in ("seed", "digits"):
            theta = _affine_params(self.augment, x.shape[0], self.generator).to(x.device)
            grid = F.affine_grid(theta, [x.shape[0], x.shape[1], size, size], align_corners=False)
            padding = "border" if self.augment == "seed" else "zeros"
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)
        elif x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if shift is not None and shift != (0.0, 0.0):
            theta = torch.tensor([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]], device=x.device)
            grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        x = self._normalise(x)
        if self.prep.in_chans == 3:
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        x = x.contiguous(memory_format=torch.channels_last)
        return x if dtype is None else x.to(dtype)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std``, written straight into a channels_last tensor: the same numbers as the
        plain expression, which on a grey batch (1 channel broadcast to 3) was several times slower
        (figures in docs/performance.md) and needed a layout copy after it."""
        mean, std = self._mean_std(x.device)
        shape = (x.shape[0], max(x.shape[1], mean.shape[1]), *x.shape[2:])
        out = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
        return torch.sub(x, mean, out=out).div_(std)

    def _match_channels(self, x: torch.Tensor) -> torch.Tensor:
        if self.prep.in_chans == 1 and x.shape[1] == 3:
            return x.mean(dim=1, keepdim=True)
        if self.prep.in_chans == 1 and x.shape[1] == 4:
            return x[:, :3].mean(dim=1, keepdim=True)
        if self.prep.in_chans == 3 and x.shape[1] == 4:
            return x[:, :3]
        return x


TTA_OFFSETS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1))


def tta_shifts(views: int) -> list[tuple[float, float]]:
    """The ``views`` test-time views: the image itself, then copies shifted by 1/28 of its side
    (one pixel of a 28-px digit; 4 px at 112 px) right, left, down, up, then diagonally.

    Shifts only, no flips: they suit digits and text as well as photos. ``affine_grid`` spans
    [-1, 1], so a shift by a fraction ``f`` of the side is ``2 f``.
    """
    if not 1 <= views <= len(TTA_OFFSETS):
        raise ValueError(f"test-time views must be 1 to {len(TTA_OFFSETS)}")
    step = 2.0 / 28.0
    return [(dx * step, dy * step) for dx, dy in TTA_OFFSETS[:views]]


def randaugment_transform():
    """Per-sample RandAugment on uint8 tensors (for natural images); grey images pass as 1 channel."""
    from torchvision.transforms import v2

    return v2.RandAugment(num_ops=2, magnitude=9)


def photo_train_view(image_size: int):
    """The training view of a photo: a random resized crop (35-100 % of the area) and a horizontal flip."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomResizedCrop(image_size, scale=(0.35, 1.0), antialias=True), v2.RandomHorizontalFlip()])


def batch_mix(mixup: float, cutmix: float, num_classes: int):
    """MixUp and/or CutMix on a preprocessed batch (torchvision's batch transforms); one of the
    two, chosen per batch, when both are asked for. None when both are off."""
    from torchvision.transforms import v2

    mixes = []
    if mixup > 0:
        mixes.append(v2.MixUp(alpha=mixup, num_classes=num_classes))
    if cutmix > 0:
        mixes.append(v2.CutMix(alpha=cutmix, num_classes=num_classes))
    if not mixes:
        return None
    return mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)


def inverse_frequency_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Loss weights ``N / (K * n_c)``: every class contributes as much as it would if all were equally frequent."""
    counts = torch.bincount(labels, minlength=num_classes).float()
    return labels.numel() / (num_classes * counts.clamp(min=1))
