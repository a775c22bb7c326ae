"""Backbone registry and factory: one interface for torchvision, timm and EfficientNet-Lite0.

``create_backbone(name, weights)`` returns a :class:`~tlearn.models.backbone.Backbone` with timm's
two-step interface: ``forward_features`` maps images to unpooled features (a map ``[B, C, H, W]``,
or a ViT's tokens), ``pool`` applies the model's own pooling and pre-logits layers (timm's ``forward_head(...,
pre_logits=True)``; for torchvision, see ``torchvision_split``) and ``forward`` does both. Only the
final linear layer is gone, so a linear head on ``forward`` sees exactly the features the model's
author classified. Every backbone also names its *stages* in forward order (``layer3``,
``features.10``, ``blocks.4`` …) for ``--freeze until:<stage>``, and carries what its weights expect
(``BackboneInfo``: mean/std, native input size, crop), which ``backbone_info(name)`` gives cheaply.

Names: ``efficientnet_lite0`` (timm ``tf_efficientnet_lite0`` + packaged ImageNet weights), any
torchvision classifier (``resnet50``, ``vgg16``, ``vit_b_16``, ``swin_t`` …), any timm model as
``timm/<name>``, and timm model folders as ``local-dir:DIR`` or ``hf-hub:ORG/NAME``.
:func:`parse_backbone_name` splits a name once into ``(source, arch)``, and :data:`SOURCES` maps
each source to the :class:`BackboneSource` that describes and builds its models.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..data.preprocessing import DEFAULT_CROP_PCT, IMAGENET_MEAN, IMAGENET_STD
from ..errors import ConfigError, WeightsError
from ..runtime.device import eval_mode
from .backbone import Backbone, BackboneInfo
from .timm_folders import create_folder_model, folder_config, is_folder_model
from .torchvision_split import UNSUPPORTED_PREFIXES, split_torchvision, stage_names
from .weights import load_into, load_lite0_imagenet, load_state_dict_file, timm_pretrained, torchvision_weights_state

LITE0 = "efficientnet_lite0"
LITE0_TIMM = "tf_efficientnet_lite0"
TIMM_PREFIX = "timm/"
# What state dicts of whole classifiers hold besides the backbone: refused nowhere, loaded never.
CLASSIFIER_PREFIXES = ("fc", "classifier", "head", "heads")


@dataclass(frozen=True)
class BackboneSource:
    """What one source of backbones does: describe a model without building it, and build it.

    ``info(name, arch)`` is what the weights of ``arch`` expect (``ConfigError`` for an ``arch`` the
    source does not know); ``create(arch, weights, info, in_chans)`` builds it. Unless ``adapts_stem``,
    ``create`` builds a 3-channel model and :func:`create_backbone` adapts its stem afterwards.
    """

    info: Callable[[str, str], BackboneInfo]
    create: Callable[[str, str, BackboneInfo, int], Backbone]
    adapts_stem: bool = False


# --- torchvision ----------------------------------------------------------------------------


def torchvision_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _torchvision_info(name: str, arch: str) -> BackboneInfo:
    """What torchvision's DEFAULT weights of ``name`` expect; any name torchvision lacks is unknown to
    every source (torchvision takes the names no other source claims)."""
    import torchvision

    if arch not in torchvision_names():
        raise ConfigError(
            f"unknown backbone '{name}'; try efficientnet_lite0, resnet50, vgg16 or timm/<name> (tlearn backbones)"
        )
    if name.startswith(UNSUPPORTED_PREFIXES):
        raise ConfigError(
            f"torchvision '{name}' has auxiliary or multi-output heads; use it through timm as 'timm/<name>'"
        )
    transforms = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    crop, resize = int(transforms.crop_size[0]), int(transforms.resize_size[0])
    return BackboneInfo(name, "torchvision", crop, tuple(transforms.mean), tuple(transforms.std), crop / resize)


def _create_torchvision(name: str, weights: str, info: BackboneInfo, in_chans: int) -> Backbone:
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


def _timm_hub_info(name: str, arch: str) -> BackboneInfo:
    import timm

    if arch not in timm.list_models():
        raise ConfigError(f"unknown timm model '{arch}' (see timm.list_models())")
    return _timm_info(name, arch, "timm")


def _create_timm(arch: str, weights: str, info: BackboneInfo, in_chans: int) -> Backbone:
    import timm

    model = timm_pretrained(arch) if weights == "imagenet" else timm.create_model(arch, pretrained=False)
    if weights not in ("imagenet", "none"):
        load_into(model, load_state_dict_file(weights), weights, ignore_prefixes=CLASSIFIER_PREFIXES)
    return _timm_backbone(model, info)


def _lite0_info(name: str, arch: str) -> BackboneInfo:
    return _timm_info(name, arch, "package")


def _create_lite0(arch: str, weights: str, info: BackboneInfo, in_chans: int) -> Backbone:
    import timm

    model = timm.create_model(LITE0_TIMM, pretrained=False)
    if weights == "imagenet":
        load_lite0_imagenet(model)
    elif weights != "none":
        load_into(model, load_state_dict_file(weights), weights, ignore_prefixes=("classifier",))
    return _timm_backbone(model, info)


# --- timm model folders: local-dir:DIR, hf-hub:ORG/NAME ------------------------------------


def _folder_info(name: str, arch: str) -> BackboneInfo:
    """What the folder's ``config.json`` says."""
    return BackboneInfo(name, name.partition(":")[0], **folder_config(name))


def _create_folder(arch: str, weights: str, info: BackboneInfo, in_chans: int) -> Backbone:
    """Built with its input channels: timm adapts the stem while loading."""
    return _timm_backbone(create_folder_model(info.name, weights, in_chans), info)


# --- the registry and the public factory ----------------------------------------------------

# A name's source (as :func:`parse_backbone_name` gives it, and ``BackboneInfo.source`` records it)
# -> what that source does.
SOURCES: dict[str, BackboneSource] = {
    "package": BackboneSource(_lite0_info, _create_lite0),
    "timm": BackboneSource(_timm_hub_info, _create_timm),
    "torchvision": BackboneSource(_torchvision_info, _create_torchvision),
    "local-dir": BackboneSource(_folder_info, _create_folder, adapts_stem=True),
    "hf-hub": BackboneSource(_folder_info, _create_folder, adapts_stem=True),
}


def parse_backbone_name(name: str) -> tuple[str, str]:
    """Split a backbone name into ``(source, arch)`` by its spelling alone (nothing is imported).

    ``efficientnet_lite0`` → ``("package", "tf_efficientnet_lite0")``; ``timm/<arch>`` →
    ``("timm", arch)``; ``local-dir:DIR`` → ``("local-dir", DIR)``; ``hf-hub:ORG/NAME`` →
    ``("hf-hub", "ORG/NAME")``; any other name → ``("torchvision", name)``, whose source says
    whether it knows it.
    """
    if name == LITE0:
        return "package", LITE0_TIMM
    if is_folder_model(name):
        source, _, where = name.partition(":")
        return source, where
    if name.startswith(TIMM_PREFIX):
        return "timm", name[len(TIMM_PREFIX) :]
    return "torchvision", name


def backbone_info(name: str) -> BackboneInfo:
    """What the backbone ``name`` expects (size, mean/std, crop), without building it.

    Raises ``ConfigError`` for a name no source knows, so a run fails before reading any data.
    """
    source, arch = parse_backbone_name(name)
    return SOURCES[source].info(name, arch)


def create_backbone(name: str, weights: str = "imagenet", in_chans: int = 3) -> Backbone:
    """Build a backbone by name with ``weights`` = ``imagenet`` | ``none`` | a state-dict path.

    ``in_chans=1`` replaces the first convolution by one whose filters are the sum of the RGB
    filters: a grey image then gives exactly what its RGB replication gave before.
    """
    source, arch = parse_backbone_name(name)
    entry = SOURCES[source]
    backbone = entry.create(arch, weights, entry.info(name, arch), in_chans)
    if in_chans == 1 and not entry.adapts_stem:
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
