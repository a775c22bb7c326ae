"""Classifier heads on a backbone's features: a linear layer on the pooled vector, or seed 000's MLP on the map."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..runtime import eval_mode
from .backbone import Backbone


class LinearHead(nn.Module):
    """Dropout → linear, on the backbone's pooled pre-logits features (the default)."""

    def __init__(self, in_features: int, num_classes: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(pooled))


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


# What each head takes: the pooled vector, or the unpooled feature map.
HEAD_INPUTS = {"linear": "pooled", "mlp": "map"}


def build_head(
    kind: str,
    backbone: Backbone,
    in_chans: int,
    image_size: int,
    num_classes: int,
    dropout: float = 0.2,
    hidden: int = 256,
) -> nn.Module:
    """A ``linear`` or ``mlp`` head sized by one probe pass of ``backbone`` at the input size."""
    if kind not in HEAD_INPUTS:
        raise ConfigError(f"unknown head '{kind}'; use linear or mlp")
    with torch.no_grad(), eval_mode(backbone):
        features = backbone.forward_features(torch.zeros(1, in_chans, image_size, image_size))
        pooled = backbone.pool(features)
    if kind == "linear":
        return LinearHead(pooled.shape[1], num_classes, dropout)
    if features.ndim != 4:
        raise ConfigError(
            f"the mlp head needs a CNN feature map; {backbone.info.name} gives tokens (use --head linear)"
        )
    return MLPHead(features[0].numel(), num_classes, hidden, 0.5)
