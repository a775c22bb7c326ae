"""The classifier heads, sized by probing the backbone."""

import pytest
import torch

from tlearn.errors import ConfigError
from tlearn.models.backbones import create_backbone
from tlearn.models.heads import LinearHead, MLPHead, build_head


def test_linear_head_classifies_the_pooled_vector():
    head = build_head("linear", create_backbone("resnet18", "none"), 3, 64, 5, dropout=0.0)
    assert isinstance(head, LinearHead) and head.fc.in_features == 512
    x = torch.randn(2, 512)
    torch.testing.assert_close(head(x), head.fc(x))


def test_mlp_head_flattens_the_map_in_keras_order():
    head = build_head("mlp", create_backbone("vgg11", "none"), 3, 64, 3, hidden=8).eval()
    assert isinstance(head, MLPHead) and head.net[1].in_features == 512 * 2 * 2  # 64 px → 2×2×512 map
    x = torch.randn(1, 512, 2, 2)
    flat = x.permute(0, 2, 3, 1).flatten(1)  # (H, W, C) order, as Keras flattens
    torch.testing.assert_close(head(x), head.net[4](torch.relu(head.net[1](flat))))


def test_unknown_head_and_mlp_on_tokens():
    with pytest.raises(ConfigError, match="unknown head"):
        build_head("attention", create_backbone("resnet18", "none"), 3, 64, 2)
    with pytest.raises(ConfigError, match="needs a CNN feature map"):
        build_head("mlp", create_backbone("timm/vit_tiny_patch16_224", "none"), 3, 224, 2)
