"""The classifier: a backbone (body) and a small head, with freezing that respects BatchNorm.

Freezing follows fastai's body/head split: ``--freeze backbone`` trains only the head,
``until:<stage>`` freezes the stem up to and including that stage, ``none`` trains everything.
Frozen BatchNorm layers stay in eval mode even while the model trains, so their running
statistics (learned on ImageNet) are not overwritten by a few batches of digits.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import FreezeSpec
from ..data.preprocessing import Preprocessing
from ..errors import ConfigError
from .backbone import Backbone
from .heads import HEAD_INPUTS, build_head


class TransferModel(nn.Module):
    """Backbone + head. ``forward`` returns logits; softmax is applied only at inference.

    ``head_input``: ``pooled`` (the backbone's own pooled pre-logits vector) or ``map`` (its
    unpooled feature map, for seed 000's flattening MLP head).
    """

    def __init__(self, backbone: Backbone, head: nn.Module, head_input: str = "pooled"):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.head_input = head_input
        self.frozen_stages: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.backbone.forward_features(x))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from the backbone's unpooled features."""
        return self.head(self.backbone.pool(features) if self.head_input == "pooled" else features)

    def train(self, mode: bool = True) -> TransferModel:
        super().train(mode)
        if mode:
            for module in self.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and is_frozen(module):
                    module.eval()
        return self

    def freeze(self, spec: FreezeSpec) -> None:
        """Apply a freeze spec: nothing, the whole backbone, or the stem up to a stage."""
        for p in self.backbone.parameters():
            p.requires_grad_(True)
        stages = self.backbone.stages
        if spec.kind == "none":
            self.frozen_stages = []
        elif spec.kind == "backbone":
            self.frozen_stages = list(stages)
            for p in self.backbone.parameters():
                p.requires_grad_(False)
        else:
            if spec.stage not in stages:
                raise ConfigError(
                    f"unknown stage '{spec.stage}' for {self.backbone.info.name}; stages: {', '.join(stages)}"
                )
            self.frozen_stages = stages[: stages.index(spec.stage) + 1]
            frozen = set(self.frozen_stages)
            for name, p in self.backbone.model.named_parameters():
                if self.backbone.stage_of(name) in frozen:  # pooling layers (stage None) keep training
                    p.requires_grad_(False)
        self.train(self.training)

    @property
    def fully_frozen(self) -> bool:
        """True while every backbone stage is frozen."""
        return self.frozen_stages == self.backbone.stages

    def stage_groups(self, lr_ratio: float) -> list[tuple[list[nn.Parameter], float]]:
        """Trainable parameters grouped by stage with LR multipliers, fastai-style.

        The head and the backbone's pooling layers get 1; trainable backbone stages get geometrically
        smaller multipliers down to ``1 / lr_ratio`` for the earliest one, since early features need
        the least change.
        """
        stages = [s for s in self.backbone.stages if s not in self.frozen_stages]
        by_stage: dict[str, list[nn.Parameter]] = {s: [] for s in stages}
        top = list(self.head.parameters())
        for name, p in self.backbone.model.named_parameters():
            stage = self.backbone.stage_of(name)
            if p.requires_grad and stage in by_stage:
                by_stage[stage].append(p)
            elif stage is None:
                top.append(p)
        groups = []
        n = len(stages)
        for i, stage in enumerate(stages):
            if by_stage[stage]:
                exponent = (n - 1 - i) / max(1, n - 1)  # 1 for the earliest stage, 0 for the last
                groups.append((by_stage[stage], lr_ratio**-exponent))
        groups.append((top, 1.0))
        return groups


def is_frozen(module: nn.Module) -> bool:
    """True when the module has parameters of its own and none of them trains."""
    params = list(module.parameters(recurse=False))
    return bool(params) and not any(p.requires_grad for p in params)


def build_model(
    backbone: Backbone,
    prep: Preprocessing,
    num_classes: int,
    head: str = "linear",
    dropout: float = 0.2,
    hidden: int = 256,
) -> TransferModel:
    """Attach a ``linear`` or ``mlp`` head sized for the inputs ``prep`` produces."""
    module = build_head(head, backbone, prep.in_chans, prep.image_size, num_classes, dropout, hidden)
    return TransferModel(backbone, module, HEAD_INPUTS[head])
