"""The backbone registry: every family gives a feature map, stages, cheap info, 1-channel stems."""

import pytest
import torch

from tlearn.errors import ConfigError
from tlearn.models.backbones import backbone_info, create_backbone


@pytest.mark.parametrize(
    "name, channels",
    [
        ("efficientnet_lite0", 1280),
        ("resnet18", 512),
        ("vgg11", 512),
        ("mobilenet_v3_small", 576),
        ("densenet121", 1024),
        ("convnext_tiny", 768),
        ("timm/resnet10t", 512),
        ("regnet_y_400mf", 440),
    ],
)
def test_every_family_gives_a_feature_map(name, channels):
    backbone = create_backbone(name, "none").eval()
    with torch.no_grad():
        out = backbone(torch.randn(2, 3, 64, 64))
    assert out.shape[:2] == (2, channels) and out.ndim == 4
    assert len(backbone.stages) >= 2


def test_one_channel_stem_equals_rgb_replication():
    rgb = create_backbone("resnet18", "none").eval()
    grey = create_backbone("resnet18", "none", in_chans=1).eval()
    grey.load_state_dict(
        {k: (v.sum(1, keepdim=True) if k == "model.conv1.weight" else v) for k, v in rgb.state_dict().items()}
    )
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(grey(x), rgb(x.expand(-1, 3, -1, -1)), atol=1e-4, rtol=1e-4)


def test_one_channel_lite0_keeps_same_padding_conv():
    rgb = create_backbone("efficientnet_lite0", "imagenet").eval()
    grey = create_backbone("efficientnet_lite0", "imagenet", in_chans=1).eval()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(grey(x), rgb(x.expand(-1, 3, -1, -1)), atol=1e-4, rtol=1e-4)


def test_unknown_backbone():
    with pytest.raises(ConfigError, match="unknown backbone 'resnet5000'"):
        create_backbone("resnet5000")
    with pytest.raises(ConfigError, match="unknown timm model"):
        create_backbone("timm/not_a_model")


def test_info_comes_before_building_and_matches_the_built_backbone():
    for name in ("efficientnet_lite0", "resnet18", "timm/resnet10t"):
        assert backbone_info(name) == create_backbone(name, "none").info
    lite0 = backbone_info("efficientnet_lite0")
    assert (lite0.input_size, lite0.mean, lite0.crop_pct) == (224, (0.5, 0.5, 0.5), 0.875)
    with pytest.raises(ConfigError, match="use it through timm"):
        backbone_info("vit_b_16")
