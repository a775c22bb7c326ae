"""How an image becomes a model input, decided once per run.

``resolve_preprocessing(config, pretrained)`` turns the options and the backbone's pretrained
configuration into one frozen :class:`Preprocessing`. The model is built for it, the data is
decoded with it, the feature cache keys on it, and ``model.json`` stores it, so ``predict``,
``evaluate``, ``export`` and ``serve`` prepare an image exactly as the test set was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Protocol

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ImageNet-style evaluation: resize the short side to size / crop_pct, then centre-crop to size.
DEFAULT_CROP_PCT = 0.875
# Datasets of image files (photos) are evaluated with a centre crop; tensor datasets are resized whole.
FILE_DATASETS = ("folder", "csv")
# Channels of each built-in dataset's images (files are decoded as RGB).
GREY_DATASETS = ("mnist", "fashion-mnist", "kmnist")


class PretrainedConfig(Protocol):
    """What a backbone's weights expect (``models.BackboneInfo`` provides it)."""

    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pct: float


@dataclass(frozen=True)
class Preprocessing:
    """Everything that turns a decoded uint8 image into the model's input."""

    image_size: int
    in_chans: int  # channels the model takes
    mean: tuple[float, ...]
    std: tuple[float, ...]
    data_channels: int = 1  # channels of the training images; user images are decoded to match (1: L, 3: RGB)
    crop_pct: Optional[float] = None  # photos: evaluation resize + centre crop; None: the whole image is resized

    @property
    def input_mode(self) -> str:
        """PIL mode user images are converted to: ``L`` for grey training data, else ``RGB``."""
        return "L" if self.data_channels == 1 else "RGB"

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(mean=list(self.mean), std=list(self.std))
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        crop = data.get("crop_pct")
        return cls(
            int(data["image_size"]),
            int(data["in_chans"]),
            tuple(float(m) for m in data["mean"]),
            tuple(float(s) for s in data["std"]),
            int(data.get("data_channels", 1)),
            float(crop) if crop else None,
        )


def resolve_preprocessing(config, pretrained: PretrainedConfig) -> Preprocessing:
    """The run's preprocessing from its options and the backbone's pretrained configuration.

    Image size: ``--image-size`` or the backbone's native size. Mean/std: ``--normalize``
    (the weights' own, ImageNet's, or none). A 1-channel model (``--in-chans 1``) gets one
    averaged statistic, since its first convolution sums the RGB filters.
    """
    if config.normalize == "none":
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    elif config.normalize == "imagenet":
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        mean, std = tuple(float(m) for m in pretrained.mean), tuple(float(s) for s in pretrained.std)
    if config.in_chans == 1:
        # The 1-channel stem sums the RGB filters, so a single averaged statistic keeps the
        # input on the scale the pretrained filters expect.
        mean, std = (sum(mean) / len(mean),), (sum(std) / len(std),)
    photos = config.dataset in FILE_DATASETS
    return Preprocessing(
        image_size=int(config.image_size or pretrained.input_size),
        in_chans=int(config.in_chans),
        mean=tuple(mean),
        std=tuple(std),
        data_channels=1 if config.dataset in GREY_DATASETS else 3,
        crop_pct=float(pretrained.crop_pct or DEFAULT_CROP_PCT) if photos else None,
    )


def eval_view(image: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """The evaluation view of one uint8 ``[C, H, W]`` image of any size.

    Photos: resize the short side to ``size / crop_pct``, then centre-crop ``size`` square
    (ImageNet style). Otherwise the image is returned as is; the batch preprocessor resizes it.
    """
    if prep.crop_pct is None:
        return image
    from torchvision.transforms import v2

    size = prep.image_size
    view = v2.Compose([v2.Resize(int(round(size / prep.crop_pct)), antialias=True), v2.CenterCrop(size)])
    return view(image)
