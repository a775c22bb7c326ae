"""Backbone registry and factory: one interface for torchvision, timm and EfficientNet-Lite0.

``create_backbone(name, weights)`` returns a :class:`Backbone` with timm's two-step interface:
``forward_features`` maps images to unpooled features (a map ``[B, C, H, W]``, or a ViT's tokens),
``pool`` applies the model's own pooling and pre-logits layers (timm's ``forward_head(...,
pre_logits=True)``; for torchvision, see ``torchvision_split``) and ``forward`` does both. Only the
final linear layer is gone, so a linear head on ``forward`` sees exactly the features the model's
author classified. Every backbone also names its *stages* in forward order (``layer3``,
``features.10``, ``blocks.4`` …) for ``--freeze until:<stage>``, and carries what its weights expect
(``BackboneInfo``: mean/std, native input size, crop), which ``backbone_info(name)`` gives cheaply.

Names: ``efficientnet_lite0`` (timm ``tf_efficientnet_lite0`` + packaged ImageNet weights), any
torchvision classifier (``resnet50``, ``vgg16``, ``vit_b_16``, ``swin_t`` …), and any timm model as
``timm/<name>``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..data.preprocessing import DEFAULT_CROP_PCT, IMAGENET_MEAN, IMAGENET_STD
from ..errors import ConfigError, WeightsError
from ..runtime import eval_mode
from .timm_folders import create_folder_model, folder_config, is_folder_model
from .torchvision_split import UNSUPPORTED_PREFIXES, split_torchvision, stage_names
from .weights import load_into, load_lite0_imagenet, load_state_dict_file, timm_pretrained, torchvision_weights_state

LITE0 = "efficientnet_lite0"
LITE0_TIMM = "tf_efficientnet_lite0"
# What state dicts of whole classifiers hold besides the backbone: refused nowhere, loaded never.
CLASSIFIER_PREFIXES = ("fc", "classifier", "head", "heads")


@dataclass(frozen=True)
class BackboneInfo:
    """What a backbone's weights expect and where it comes from."""

    name: str
    source: str  # "torchvision" | "timm" | "package"
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


# --- torchvision ----------------------------------------------------------------------------


def torchvision_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _torchvision_info(name: str) -> BackboneInfo:
    import torchvision

    if name.startswith(UNSUPPORTED_PREFIXES):
        raise ConfigError(
            f"torchvision '{name}' has auxiliary or multi-output heads; use it through timm as 'timm/<name>'"
        )
    transforms = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    crop, resize = int(transforms.crop_size[0]), int(transforms.resize_size[0])
    return BackboneInfo(name, "torchvision", crop, tuple(transforms.mean), tuple(transforms.std), crop / resize)


def _create_torchvision(name: str, weights: str, info: BackboneInfo) -> Backbone:
    import torchvision

    model = torchvision.models.get_model(name, weights=None)
    if weights == "imagenet":
        load_into(model, torchvision_weights_state(name), f"ImageNet {name}")
    elif weights != "none":
        load_into(model, load_state_dict_file(weights), weights, ignore_prefixes=CLASSIFIER_PREFIXES + ("avgpool",))
    split = split_torchvision(name, model)
    return Backbone(
        model, split.forward_features, split.pool, split.stages, info, tuple(split.pool_modules), split.tail
    )


# --- timm and the packaged EfficientNet-Lite0 -----------------------------------------------


def _timm_info(name: str, arch: str, source: str) -> BackboneInfo:
    import timm

    cfg = timm.models.get_pretrained_cfg(arch)
    cfg = cfg.to_dict() if cfg is not None else {}
    size = (cfg.get("input_size") or (3, 224, 224))[-1]
    return BackboneInfo(
        name,
        source,
        int(size),
        tuple(cfg.get("mean") or IMAGENET_MEAN),
        tuple(cfg.get("std") or IMAGENET_STD),
        float(cfg.get("crop_pct") or DEFAULT_CROP_PCT),
    )


def _children_called(model: nn.Module, run: Callable[[], torch.Tensor]) -> tuple[list[str], torch.Tensor]:
    """The direct children of ``model`` that ``run`` calls, in call order, and what it returns."""
    called: list[str] = []
    hooks = [
        child.register_forward_pre_hook(
            lambda module, args, name=name: called.append(name) if name not in called else None
        )
        for name, child in model.named_children()
    ]
    try:
        with torch.no_grad(), eval_mode(model):
            out = run()
    finally:
        for hook in hooks:
            hook.remove()
    return called, out


def _timm_backbone(model: nn.Module, info: BackboneInfo) -> Backbone:
    """A timm model without its classifier: its own ``forward_features`` and ``forward_head(pre_logits=True)``.

    Which children are trunk stages and which are pooling layers differs between families (timm's
    MobileNetV3 runs ``conv_head`` in its head, EfficientNet in its trunk), so one probe forward
    pass records which children each half calls.
    """
    model.reset_classifier(0)
    in_chans = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    x = torch.zeros(1, in_chans, info.input_size, info.input_size)
    trunk, features = _children_called(model, lambda: model.forward_features(x))
    pool, _ = _children_called(model, lambda: model.forward_head(features, pre_logits=True))
    return Backbone(
        model,
        lambda m, x: m.forward_features(x),
        lambda m, x: m.forward_head(x, pre_logits=True),
        stage_names(model, trunk),
        info,
        tuple(name for name in pool if name not in trunk),
    )


def _create_timm(arch: str, weights: str, info: BackboneInfo) -> Backbone:
    import timm

    model = timm_pretrained(arch) if weights == "imagenet" else timm.create_model(arch, pretrained=False)
    if weights not in ("imagenet", "none"):
        load_into(model, load_state_dict_file(weights), weights, ignore_prefixes=CLASSIFIER_PREFIXES)
    return _timm_backbone(model, info)


def _create_lite0(weights: str, info: BackboneInfo) -> Backbone:
    import timm

    model = timm.create_model(LITE0_TIMM, pretrained=False)
    if weights == "imagenet":
        load_lite0_imagenet(model)
    elif weights != "none":
        load_into(model, load_state_dict_file(weights), weights, ignore_prefixes=("classifier",))
    return _timm_backbone(model, info)


# --- public factory -------------------------------------------------------------------------


def backbone_info(name: str) -> BackboneInfo:
    """What the backbone ``name`` expects (size, mean/std, crop), without building it.

    Raises ``ConfigError`` for a name no source knows, so a run fails before reading any data.
    """
    if name == LITE0:
        return _timm_info(LITE0, LITE0_TIMM, "package")
    if is_folder_model(name):  # local-dir:DIR or hf-hub:ORG/NAME: what the folder's config.json says
        return BackboneInfo(name, name.partition(":")[0], **folder_config(name))
    if name.startswith("timm/"):
        import timm

        arch = name[len("timm/") :]
        if arch not in timm.list_models():
            raise ConfigError(f"unknown timm model '{arch}' (see timm.list_models())")
        return _timm_info(name, arch, "timm")
    if name in torchvision_names():
        return _torchvision_info(name)
    raise ConfigError(
        f"unknown backbone '{name}'; try efficientnet_lite0, resnet50, vgg16 or timm/<name> (tlearn backbones)"
    )


def create_backbone(name: str, weights: str = "imagenet", in_chans: int = 3) -> Backbone:
    """Build a backbone by name with ``weights`` = ``imagenet`` | ``none`` | a state-dict path.

    ``in_chans=1`` replaces the first convolution by one whose filters are the sum of the RGB
    filters: a grey image then gives exactly what its RGB replication gave before.
    """
    info = backbone_info(name)
    if info.source == "package":
        backbone = _create_lite0(weights, info)
    elif info.source == "timm":
        backbone = _create_timm(name[len("timm/") :], weights, info)
    elif is_folder_model(name):  # built with its input channels: timm adapts the stem while loading
        return _timm_backbone(create_folder_model(name, weights, in_chans), info)
    else:
        backbone = _create_torchvision(name, weights, info)
    if in_chans == 1:
        adapt_first_conv(backbone.model)
    return backbone


def adapt_first_conv(model: nn.Module) -> None:
    """Turn the first 3-channel convolution into a 1-channel one by summing its filters."""
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d) and child.in_channels == 3:
                # A copy keeps the layer's class (timm's "same"-padding convs among them).
                conv = copy.deepcopy(child)
                conv.in_channels = 1
                conv.weight = nn.Parameter(child.weight.detach().sum(dim=1, keepdim=True))
                setattr(parent, child_name, conv)
                return
    raise WeightsError("cannot use --in-chans 1: no 3-channel first convolution found in this backbone")
