"""What every backbone is: :class:`Backbone`, a pretrained classifier without its final linear layer,
with timm's two-step interface and named stages, and :class:`BackboneInfo`, what its weights expect.

:mod:`tlearn.models.backbones` resolves a name to one of these and builds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..data.preprocessing import DEFAULT_CROP_PCT
from ..runtime.device import eval_mode


@dataclass(frozen=True)
class BackboneInfo:
    """What a backbone's weights expect and where it comes from."""

    name: str
    source: str  # "torchvision" | "timm" | "package" | "local-dir" | "hf-hub"
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pct: float = DEFAULT_CROP_PCT  # eval: resize the short side to input_size / crop_pct, centre-crop


Step = Callable[[nn.Module, torch.Tensor], torch.Tensor]


class Backbone(nn.Module):
    """A pretrained classifier without its final linear layer.

    ``stages`` run in order make up ``forward_features`` (then ``tail``, if any); ``pool_modules``
    hold the parameters of the pooling and pre-logits layers, which belong to no stage.
    """

    def __init__(
        self,
        model: nn.Module,
        forward_features: Step,
        pool: Step,
        stages: list[str],
        info: BackboneInfo,
        pool_modules: tuple[str, ...] = (),
        tail: Optional[Step] = None,
    ):
        super().__init__()
        self.model = model
        self._forward_features = forward_features
        self._pool = pool
        self.stages = stages
        self.info = info
        self.pool_modules = tuple(pool_modules)
        self._tail = tail
        self._splittable: Optional[bool] = None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Unpooled features: ``[B, C, H, W]`` for CNNs (a ViT's ``[B, tokens, C]``)."""
        return self._forward_features(self.model, x)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """The model's own pooling and pre-logits layers: ``[B, num_features]``."""
        return self._pool(self.model, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled pre-logits features of images."""
        return self.pool(self.forward_features(x))

    def forward_until(self, x: torch.Tensor, stage_index: int) -> torch.Tensor:
        """Run stages ``0 … stage_index`` (inclusive): the activation at a freeze boundary."""
        for stage in self.stages[: stage_index + 1]:
            x = self.model.get_submodule(stage)(x)
        return x

    def forward_between(self, x: torch.Tensor, start_index: int, end_index: int) -> torch.Tensor:
        """Run the stages after ``start_index`` up to ``end_index`` (inclusive): one boundary
        activation from another, shallower one."""
        for stage in self.stages[start_index + 1 : end_index + 1]:
            x = self.model.get_submodule(stage)(x)
        return x

    def forward_from(self, x: torch.Tensor, stage_index: int) -> torch.Tensor:
        """Run the stages after ``stage_index`` on a boundary activation, up to the unpooled features."""
        for stage in self.stages[stage_index + 1 :]:
            x = self.model.get_submodule(stage)(x)
        return self._tail(self.model, x) if self._tail is not None else x

    def splittable(self, in_chans: int = 3, image_size: int = 64) -> bool:
        """Whether running the stages one by one equals ``forward_features`` (checked once, on random input).

        True for the sequential CNNs (ResNet, VGG, EfficientNet, MobileNet …); False where
        ``forward_features`` does more than chain its stages (ViT's position embeddings, say).
        """
        if self._splittable is None:
            x = torch.randn(2, in_chans, image_size, image_size, generator=torch.Generator().manual_seed(0))
            try:
                with torch.no_grad(), eval_mode(self):
                    split = self.forward_from(self.forward_until(x, 0), 0)
                    self._splittable = bool(torch.allclose(split, self.forward_features(x), atol=1e-4))
            except Exception:  # a stage that cannot run on its own: not splittable
                self._splittable = False
        return self._splittable

    def high_resolution_end(self, in_chans: int = 3, image_size: int = 64, reduction: int = 4) -> Optional[str]:
        """The last stage whose output is at most ``reduction`` times smaller than the image: where
        the high-resolution stages end. They hold few parameters but most of a step's arithmetic,
        so freezing them is the cheapest way to a faster step (``--time-budget`` does).

        None where the backbone cannot be cut at its stages, where its first stage is already
        coarser, or where every stage is that fine (nothing would be left to train)."""
        if not self.splittable(in_chans, image_size):
            return None
        x = torch.zeros(1, in_chans, image_size, image_size)
        last = None
        with torch.no_grad(), eval_mode(self):
            for stage in self.stages:
                x = self.model.get_submodule(stage)(x)
                if x.ndim != 4 or x.shape[-1] * reduction < image_size:
                    return last
                last = stage
        return None

    def stage_of(self, param_name: str) -> Optional[str]:
        """The stage a parameter belongs to: the longest matching stage prefix; ``None`` for the pooling
        layers; the first stage for parameters outside every stage (a ViT's class token, position embedding)."""
        if any(param_name == p or param_name.startswith(p + ".") for p in self.pool_modules):
            return None
        best = None
        for stage in self.stages:
            if param_name == stage or param_name.startswith(stage + "."):
                if best is None or len(stage) > len(best):
                    best = stage
        return best or self.stages[0]
