"""Backbone registry and factory: one interface for torchvision, timm and EfficientNet-Lite0.

``create_backbone(name, weights)`` returns a :class:`Backbone`, whose ``forward`` maps images to
an unpooled feature map ``[B, C, H, W]``. Every backbone also names its *stages* in forward order
(``layer3``, ``features.10``, ``blocks.4`` …) for ``--freeze until:<stage>``, and carries the
preprocessing its weights expect (``BackboneInfo``: mean/std, native input size, crop), which
``backbone_info(name)`` gives cheaply, before anything is built.

Names: ``efficientnet_lite0`` (timm ``tf_efficientnet_lite0`` + packaged ImageNet weights), any
torchvision classification CNN (``resnet50``, ``vgg16`` …), and any timm model as ``timm/<name>``.
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
from .weights import load_into, load_lite0_imagenet, load_state_dict_file, timm_pretrained, torchvision_weights_state

LITE0 = "efficientnet_lite0"
LITE0_TIMM = "tf_efficientnet_lite0"
# Containers whose children are the natural freezing stages (timm blocks/stages, vgg features).
STAGE_CONTAINERS = ("blocks", "stages", "layers", "features", "trunk_output")
# torchvision families without a plain CNN trunk (use them through timm instead).
NO_TRUNK_PREFIXES = ("vit_", "swin", "maxvit", "googlenet", "inception")
# Names of torchvision classifier parts that follow the trunk.
TV_HEAD_NAMES = ("fc", "classifier", "avgpool", "dropout", "head", "heads")


@dataclass(frozen=True)
class BackboneInfo:
    """What a backbone's weights expect and where it comes from."""

    name: str
    source: str  # "torchvision" | "timm" | "package"
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pct: float = DEFAULT_CROP_PCT  # eval: resize the short side to input_size / crop_pct, centre-crop


class Backbone(nn.Module):
    """A pretrained network without its classifier: images → feature map ``[B, C, H, W]``."""

    def __init__(
        self,
        model: nn.Module,
        forward_features: Callable,
        stages: list[str],
        info: BackboneInfo,
        tail: Optional[Callable] = None,
    ):
        super().__init__()
        self.model = model
        self._forward_features = forward_features
        self.stages = stages
        self.info = info
        self._tail = tail  # what forward_features does after the last stage (densenet's ReLU)
        self._splittable: Optional[bool] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _as_map(self._forward_features(self.model, x))

    def forward_until(self, x: torch.Tensor, stage_index: int) -> torch.Tensor:
        """Run stages ``0 … stage_index`` (inclusive): the activation at a freeze boundary."""
        for stage in self.stages[: stage_index + 1]:
            x = self.model.get_submodule(stage)(x)
        return x

    def forward_from(self, x: torch.Tensor, stage_index: int) -> torch.Tensor:
        """Run the stages after ``stage_index`` on a boundary activation, up to the feature map."""
        for stage in self.stages[stage_index + 1 :]:
            x = self.model.get_submodule(stage)(x)
        return _as_map(self._tail(x) if self._tail is not None else x)

    def splittable(self, in_chans: int = 3, image_size: int = 64) -> bool:
        """Whether running the stages one by one equals ``forward`` (checked once, on random input).

        True for the sequential CNNs (ResNet, VGG, EfficientNet, MobileNet …); False where
        ``forward_features`` does more than chain its stages (ViT's position embeddings, say).
        """
        if self._splittable is None:
            x = torch.randn(2, in_chans, image_size, image_size, generator=torch.Generator().manual_seed(0))
            try:
                with torch.no_grad(), eval_mode(self):
                    split = self.forward_from(self.forward_until(x, 0), 0)
                    self._splittable = bool(torch.allclose(split, self(x), atol=1e-4))
            except Exception:  # a stage that cannot run on its own: not splittable
                self._splittable = False
        return self._splittable

    def stage_of(self, param_name: str) -> Optional[str]:
        """The stage a parameter belongs to (longest matching stage prefix)."""
        best = None
        for stage in self.stages:
            if param_name == stage or param_name.startswith(stage + "."):
                if best is None or len(stage) > len(best):
                    best = stage
        return best


def _as_map(out: torch.Tensor) -> torch.Tensor:
    return out if out.ndim == 4 else out.reshape(out.shape[0], -1, 1, 1)


def _stage_names(model: nn.Module, skip: tuple[str, ...]) -> list[str]:
    names = []
    for name, child in model.named_children():
        if name in skip:
            continue
        if name in STAGE_CONTAINERS and isinstance(child, (nn.Sequential, nn.ModuleList)):
            names.extend(f"{name}.{sub}" for sub, _ in child.named_children())
        else:
            names.append(name)
    return names


# --- torchvision ----------------------------------------------------------------------------


def torchvision_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _torchvision_info(name: str) -> BackboneInfo:
    import torchvision

    if name.startswith(NO_TRUNK_PREFIXES):
        raise ConfigError(f"torchvision '{name}' has no plain CNN trunk; use it through timm as 'timm/<name>'")
    transforms = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    crop, resize = int(transforms.crop_size[0]), int(transforms.resize_size[0])
    return BackboneInfo(name, "torchvision", crop, tuple(transforms.mean), tuple(transforms.std), crop / resize)


def _torchvision_trunk(name: str, model: nn.Module) -> tuple[Callable, list[str]]:
    """How to run a torchvision classifier up to (not including) its global pooling."""
    if name.startswith("densenet"):
        return (lambda m, x: torch.relu(m.features(x))), _stage_names(model, ("classifier",))
    if name.startswith("convnext"):
        # ConvNeXt normalises the map inside its classifier; keep that LayerNorm in the trunk.
        return (lambda m, x: m.classifier[0](m.features(x))), _stage_names(model, ("avgpool", "classifier"))
    if hasattr(model, "features") and isinstance(model.features, nn.Module):
        return (lambda m, x: m.features(x)), _stage_names(model, ("avgpool", "classifier"))
    if name.startswith("mnasnet"):
        return (lambda m, x: m.layers(x)), _stage_names(model, ("classifier",))
    trunk = [n for n, _ in model.named_children() if n not in TV_HEAD_NAMES]

    def forward(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        for child in trunk:
            x = getattr(m, child)(x)
        return x

    return forward, trunk


def _create_torchvision(name: str, weights: str, info: BackboneInfo) -> Backbone:
    import torchvision

    model = torchvision.models.get_model(name, weights=None)
    if weights == "imagenet":
        load_into(model, torchvision_weights_state(name), f"ImageNet {name}")
    elif weights != "none":
        load_into(model, load_state_dict_file(weights), weights, ignore_prefixes=TV_HEAD_NAMES)
    forward, stages = _torchvision_trunk(name, model)
    tail = torch.relu if name.startswith("densenet") else None
    if name.startswith("convnext"):
        model.classifier = nn.Sequential(model.classifier[0])
        stages = stages + ["classifier.0"]
    else:
        for head in ("fc", "classifier"):
            if hasattr(model, head) and head not in stages:
                setattr(model, head, nn.Identity())
    return Backbone(model, forward, stages, info, tail)


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


def _timm_backbone(model: nn.Module, info: BackboneInfo) -> Backbone:
    model.reset_classifier(0, "")
    skip = tuple(n for n in ("classifier", "head", "fc", "global_pool", "head_drop", "fc_norm") if hasattr(model, n))
    stages = _stage_names(model, skip)
    return Backbone(model, lambda m, x: m.forward_features(x), stages, info)


def _create_timm(arch: str, weights: str, info: BackboneInfo) -> Backbone:
    import timm

    model = timm_pretrained(arch) if weights == "imagenet" else timm.create_model(arch, pretrained=False)
    if weights not in ("imagenet", "none"):
        load_into(model, load_state_dict_file(weights), weights, ignore_prefixes=("classifier", "head", "fc"))
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
