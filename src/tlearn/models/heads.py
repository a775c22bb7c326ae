"""Classifier heads that sit on a backbone's feature map."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..runtime import eval_mode
from .backbones import Backbone


class LinearHead(nn.Module):
    """Global average pool → dropout → linear (the default)."""

    def __init__(self, in_features: int, num_classes: int, dropout: float):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.pool(feature_map).flatten(1)))


class MLPHead(nn.Module):
    """Seed 000's Keras head: Flatten of the feature map → Dense(hidden, ReLU) → Dropout(0.5) → Dense."""

    def __init__(self, flat_features: int, num_classes: int, hidden: int = 256, dropout: float = 0.5):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat_features, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        # Flatten in channels-last (H, W, C) order, as Keras does, so the layout matches seed 000.
        return self.net(feature_map.permute(0, 2, 3, 1))


def feature_shape(backbone: Backbone, in_chans: int, image_size: int) -> tuple[int, int, int]:
    """``(C, H, W)`` of the backbone's feature map for one input of the given size."""
    with torch.no_grad(), eval_mode(backbone):
        out = backbone(torch.zeros(1, in_chans, image_size, image_size))
    return tuple(out.shape[1:])  # type: ignore[return-value]


def build_head(
    kind: str, feature_map: tuple[int, int, int], num_classes: int, dropout: float = 0.2, hidden: int = 256
) -> nn.Module:
    """A ``linear`` or ``mlp`` head for a feature map of shape ``(C, H, W)``."""
    channels, height, width = feature_map
    if kind == "linear":
        return LinearHead(channels, num_classes, dropout)
    if kind == "mlp":
        return MLPHead(channels * height * width, num_classes, hidden, 0.5)
    raise ConfigError(f"unknown head '{kind}'; use linear or mlp")
