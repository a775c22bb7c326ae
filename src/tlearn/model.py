"""The classifier: a backbone (body) and a small head, with freezing that respects BatchNorm.

Freezing follows fastai's body/head split: ``--freeze backbone`` trains only the head,
``until:<stage>`` freezes the stem up to and including that stage, ``none`` trains everything.
Frozen BatchNorm layers stay in eval mode even while the model trains, so their running
statistics (learned on ImageNet) are not overwritten by a few batches of digits.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import Backbone
from .errors import ConfigError
from .utils import eval_mode


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
            nn.Flatten(), nn.Linear(flat_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
        )

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        # Flatten in channels-last (H, W, C) order, as Keras does, so the layout matches seed 000.
        return self.net(feature_map.permute(0, 2, 3, 1))


def feature_shape(backbone: Backbone, in_chans: int, image_size: int) -> tuple[int, int, int]:
    """``(C, H, W)`` of the backbone's feature map for one input of the given size."""
    with torch.no_grad(), eval_mode(backbone):
        out = backbone(torch.zeros(1, in_chans, image_size, image_size))
    return tuple(out.shape[1:])  # type: ignore[return-value]


class TransferModel(nn.Module):
    """Backbone + head. ``forward`` returns logits; softmax is applied only at inference."""

    def __init__(self, backbone: Backbone, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.frozen_stages: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def train(self, mode: bool = True) -> "TransferModel":
        super().train(mode)
        if mode:
            for module in self.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and is_frozen(module):
                    module.eval()
        return self

    def freeze(self, spec: str) -> None:
        """Apply ``backbone`` | ``none`` | ``until:<stage>`` (see module docstring)."""
        for p in self.backbone.parameters():
            p.requires_grad_(True)
        stages = self.backbone.stages
        if spec == "none":
            self.frozen_stages = []
        elif spec == "backbone":
            self.frozen_stages = list(stages)
            for p in self.backbone.parameters():
                p.requires_grad_(False)
        else:
            stage = spec.split(":", 1)[1]
            if stage not in stages:
                raise ConfigError(f"unknown stage '{stage}' for {self.backbone.info.name}; stages: {', '.join(stages)}")
            self.frozen_stages = stages[: stages.index(stage) + 1]
            frozen = set(self.frozen_stages)
            for name, p in self.backbone.model.named_parameters():
                if self.backbone.stage_of(name) in frozen:
                    p.requires_grad_(False)
        self.train(self.training)

    def stage_groups(self, lr_ratio: float) -> list[tuple[list[nn.Parameter], float]]:
        """Trainable parameters grouped by stage with LR multipliers, fastai-style.

        The head gets 1; trainable backbone stages get geometrically smaller multipliers down to
        ``1 / lr_ratio`` for the earliest one, since early features need the least change.
        """
        stages = [s for s in self.backbone.stages if s not in self.frozen_stages]
        by_stage: dict[str, list[nn.Parameter]] = {s: [] for s in stages}
        for name, p in self.backbone.model.named_parameters():
            stage = self.backbone.stage_of(name)
            if p.requires_grad and stage in by_stage:
                by_stage[stage].append(p)
        groups = []
        n = len(stages)
        for i, stage in enumerate(stages):
            if by_stage[stage]:
                exponent = (n - 1 - i) / max(1, n - 1)  # 1 for the earliest stage, 0 for the last
                groups.append((by_stage[stage], lr_ratio ** -exponent))
        groups.append((list(self.head.parameters()), 1.0))
        return groups


def is_frozen(module: nn.Module) -> bool:
    """True when the module has parameters of its own and none of them trains."""
    params = list(module.parameters(recurse=False))
    return bool(params) and not any(p.requires_grad for p in params)


def build_model(
    backbone: Backbone, num_classes: int, head: str, image_size: int, in_chans: int, dropout: float = 0.2, hidden: int = 256
) -> TransferModel:
    """Attach a ``linear`` or ``mlp`` head sized for ``image_size`` inputs."""
    channels, height, width = feature_shape(backbone, in_chans, image_size)
    if head == "linear":
        return TransferModel(backbone, LinearHead(channels, num_classes, dropout))
    if head == "mlp":
        return TransferModel(backbone, MLPHead(channels * height * width, num_classes, hidden, 0.5))
    raise ConfigError(f"unknown head '{head}'; use linear or mlp")
