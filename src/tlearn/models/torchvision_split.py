"""How a torchvision classifier splits into a trunk, its own pooling, and its final linear layer.

torchvision models have no ``forward_features``/``forward_head``; each family's ``forward`` runs a
trunk (the stages), pools in its own way (global average, a ViT's class token, a Swin's norm then
average), passes the pooled vector through any pre-logits layers (VGG's FC6/FC7, MobileNetV3's
1280-unit layer, ConvNeXt's LayerNorm), and ends in one linear layer. tlearn keeps all but that
last layer, so the features its heads see are exactly those the model's author fed their classifier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from ..errors import ConfigError

# Families whose forward is not trunk -> pool -> linear (auxiliary heads, several outputs): use timm's.
UNSUPPORTED_PREFIXES = ("maxvit", "googlenet", "inception")
# Containers whose children are the natural freezing stages.
STAGE_CONTAINERS = ("blocks", "stages", "layers", "features", "trunk_output")
# Children that follow the trunk in the plain CNN families.
HEAD_NAMES = ("fc", "classifier", "avgpool", "dropout", "head", "heads")


@dataclass
class TorchvisionSplit:
    """The parts of a torchvision classifier, with its final linear layer removed from ``model``."""

    forward_features: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    pool: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    stages: list[str]
    pool_modules: list[str] = field(default_factory=list)  # modules holding pooling / pre-logits parameters
    tail: Optional[Callable[[nn.Module, torch.Tensor], torch.Tensor]] = None  # after the last stage


def stage_names(model: nn.Module, children: list[str]) -> list[str]:
    """The named children, with stage containers expanded into their own children (forward order)."""
    names = []
    for name in children:
        child = model.get_submodule(name)
        if name.split(".")[-1] in STAGE_CONTAINERS and isinstance(child, (nn.Sequential, nn.ModuleList)):
            names.extend(f"{name}.{sub}" for sub, _ in child.named_children())
        else:
            names.append(name)
    return names


def _global_average(x: torch.Tensor) -> torch.Tensor:
    return x.mean((2, 3))


def _without_last_linear(classifier: nn.Sequential) -> nn.Sequential:
    """The pre-logits layers of a classifier: everything before its last Linear, trailing dropout dropped."""
    layers = list(classifier.children())
    last = max(i for i, layer in enumerate(layers) if isinstance(layer, nn.Linear))
    kept = layers[:last]
    while kept and isinstance(kept[-1], nn.Dropout):
        kept.pop()
    return nn.Sequential(*kept)


def _vit(model: nn.Module) -> TorchvisionSplit:
    def features(m, x):
        x = m._process_input(x)
        return m.encoder(torch.cat([m.class_token.expand(x.shape[0], -1, -1), x], dim=1))

    model.heads = nn.Sequential(*[layer for name, layer in model.heads.named_children() if name != "head"])
    stages = ["conv_proj", *stage_names(model, ["encoder.layers"]), "encoder.ln"]
    return TorchvisionSplit(features, lambda m, x: m.heads(x[:, 0]), stages, ["heads"])


def _swin(model: nn.Module) -> TorchvisionSplit:
    model.head = nn.Identity()

    def tail(m, x):
        return m.permute(m.norm(x))

    return TorchvisionSplit(
        lambda m, x: tail(m, m.features(x)),
        lambda m, x: m.flatten(m.avgpool(x)),
        stage_names(model, ["features"]),
        tail=tail,
    )


def _classifier_family(name: str, model: nn.Module) -> TorchvisionSplit:
    """Models with ``features`` (or ``layers``) and a ``classifier``: VGG, AlexNet, EfficientNet,
    MobileNet, ConvNeXt, DenseNet, MNASNet, SqueezeNet."""
    trunk = "layers" if name.startswith("mnasnet") else "features"
    tail = (lambda m, x: torch.relu(x)) if name.startswith("densenet") else None
    classifier = model.classifier
    if isinstance(classifier, nn.Sequential) and any(isinstance(c, nn.Linear) for c in classifier):
        model.classifier = _without_last_linear(classifier)
    else:  # DenseNet's single Linear; SqueezeNet's convolutional classifier
        model.classifier = nn.Sequential()
    flattens = any(isinstance(c, nn.Flatten) for c in model.classifier)  # ConvNeXt normalises before flattening
    spatial = model.avgpool if hasattr(model, "avgpool") else None

    def pool(m, x):
        x = spatial(x) if spatial is not None else x.mean((2, 3), keepdim=True)
        return m.classifier(x if flattens else x.flatten(1))

    def features(m, x):
        x = getattr(m, trunk)(x)
        return tail(m, x) if tail is not None else x

    has_params = any(True for _ in model.classifier.parameters())
    return TorchvisionSplit(features, pool, stage_names(model, [trunk]), ["classifier"] if has_params else [], tail)


def _plain_family(model: nn.Module) -> TorchvisionSplit:
    """ResNet, ResNeXt, Wide ResNet, RegNet, ShuffleNet: a chain of children, then pooling and ``fc``."""
    trunk = [n for n, _ in model.named_children() if n not in HEAD_NAMES]
    spatial = model.avgpool if hasattr(model, "avgpool") else None
    model.fc = nn.Identity()

    def features(m, x):
        for child in trunk:
            x = getattr(m, child)(x)
        return x

    def pool(m, x):
        return spatial(x).flatten(1) if spatial is not None else _global_average(x)

    return TorchvisionSplit(features, pool, stage_names(model, trunk))


def split_torchvision(name: str, model: nn.Module) -> TorchvisionSplit:
    """Split ``model`` (a torchvision classifier named ``name``) and drop its final linear layer."""
    if name.startswith(UNSUPPORTED_PREFIXES):
        raise ConfigError(
            f"torchvision '{name}' has auxiliary or multi-output heads; use it through timm as 'timm/<name>'"
        )
    if name.startswith("vit_"):
        return _vit(model)
    if name.startswith("swin"):
        return _swin(model)
    if hasattr(model, "classifier"):
        return _classifier_family(name, model)
    return _plain_family(model)
