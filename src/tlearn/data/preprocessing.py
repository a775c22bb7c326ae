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
# Datasets of image files: decoded at the run's working size, with the model's channels.
FILE_DATASETS = ("folder", "csv")
# Built-in datasets of grey images (the others are RGB).
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
    def working_side(self) -> Optional[int]:
        """Short side images are decoded at when they get the centre-crop view (None: decoded as they are)."""
        return round(self.image_size / self.crop_pct) if self.crop_pct else None

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
    averaged statistic, since its first convolution sums the RGB filters. Image files are
    decoded with the model's channels; the evaluation view (``--eval-crop``) centre-crops with
    the backbone's crop fraction.
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
    files = config.dataset in FILE_DATASETS
    crop = config.eval_crop == "centre" or (config.eval_crop == "auto" and files)
    channels = 1 if config.dataset in GREY_DATASETS else int(config.in_chans) if files else 3
    return Preprocessing(
        image_size=int(config.image_size or pretrained.input_size),
        in_chans=int(config.in_chans),
        mean=tuple(mean),
        std=tuple(std),
        data_channels=channels,
        crop_pct=float(pretrained.crop_pct or DEFAULT_CROP_PCT) if crop else None,
    )


def center_crop(images: torch.Tensor, side: int) -> torch.Tensor:
    """The centre ``side`` × ``side`` of images ``[..., H, W]`` (H, W >= side), by slicing."""
    top, left = (images.shape[-2] - side) // 2, (images.shape[-1] - side) // 2
    return images[..., top : top + side, left : left + side]


def eval_view(image: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """The evaluation view of one decoded uint8 ``[C, H, W]`` image of any size.

    With a centre crop (photos): the short side at the working size (``size / crop_pct``; images
    decoded by ``read_image(..., short_side=prep.working_side)`` already are), then the centre
    square of that side, then its centre ``size`` square. The stored training images are that
    middle square, so a file and its stored copy give the same view. Otherwise the image is
    returned as is: the batch preprocessor resizes it.
    """
    if prep.crop_pct is None:
        return image
    side = prep.working_side
    if min(image.shape[-2:]) != side:
        from torchvision.transforms.v2 import functional as F

        image = F.resize(image, side, antialias=True)
    return center_crop(center_crop(image, side), prep.image_size)
