"""The backbone registry: every family gives a feature map, stages, cheap info, 1-channel stems."""

import pytest
import torch

from tlearn.errors import ConfigError
from tlearn.models.backbones import SOURCES, backbone_info, create_backbone, parse_backbone_name


@pytest.mark.parametrize(
    "name, channels, pooled",
    [
        ("efficientnet_lite0", 1280, 1280),
        ("resnet18", 512, 512),
        ("vgg11", 512, 4096),  # VGG's own FC6/FC7 pre-logits layers are kept
        ("mobilenet_v3_small", 576, 1024),
        ("densenet121", 1024, 1024),
        ("convnext_tiny", 768, 768),
        ("timm/resnet10t", 512, 512),
        ("regnet_y_400mf", 440, 440),
    ],
)
def test_every_family_gives_a_feature_map_and_a_pooled_vector(name, channels, pooled):
    backbone = create_backbone(name, "none").eval()
    with torch.no_grad():
        features = backbone.forward_features(torch.randn(2, 3, 64, 64))
        vector = backbone(torch.randn(2, 3, 64, 64))
    assert features.shape[:2] == (2, channels) and features.ndim == 4
    assert vector.shape == (2, pooled)
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


@pytest.mark.parametrize(
    "name, end, size",
    [("efficientnet_lite0", "blocks.1", 64), ("resnet18", "layer1", 80), ("timm/resnet10t", "layer1", 64)],
)
def test_the_high_resolution_stages_end_where_the_maps_get_coarser_than_a_quarter(name, end, size):
    backbone = create_backbone(name, "none", in_chans=1)
    assert backbone.high_resolution_end(1, size) == end
    x = torch.zeros(1, 1, size, size)
    with torch.no_grad():
        inside = backbone.eval().forward_until(x, backbone.stages.index(end))
        after = backbone.model.get_submodule(backbone.stages[backbone.stages.index(end) + 1])(inside)
    assert inside.shape[-1] * 4 == size and after.shape[-1] * 4 < size


def test_a_transformer_has_no_high_resolution_stages_to_freeze():
    assert create_backbone("timm/vit_tiny_patch16_224", "none").high_resolution_end(3, 224) is None


def test_unknown_backbone():
    with pytest.raises(ConfigError, match="unknown backbone 'resnet5000'"):
        create_backbone("resnet5000")
    with pytest.raises(ConfigError, match="unknown timm model"):
        create_backbone("timm/not_a_model")


@pytest.mark.parametrize(
    "name, parsed",
    [
        ("efficientnet_lite0", ("package", "tf_efficientnet_lite0")),
        ("resnet50", ("torchvision", "resnet50")),
        ("resnet5000", ("torchvision", "resnet5000")),  # torchvision's source says it does not know it
        ("timm/resnet10t", ("timm", "resnet10t")),
        ("local-dir:runs/exported", ("local-dir", "runs/exported")),
        ("hf-hub:org/name", ("hf-hub", "org/name")),
    ],
)
def test_a_name_is_parsed_once_into_a_source_of_the_table_and_an_architecture(name, parsed):
    assert parse_backbone_name(name) == parsed and parsed[0] in SOURCES


def test_the_info_records_the_source_the_name_was_parsed_to():
    for name in ("efficientnet_lite0", "resnet18", "timm/resnet10t"):
        assert backbone_info(name).source == parse_backbone_name(name)[0]


def test_info_comes_before_building_and_matches_the_built_backbone():
    for name in ("efficientnet_lite0", "resnet18", "timm/resnet10t"):
        assert backbone_info(name) == create_backbone(name, "none").info
    lite0 = backbone_info("efficientnet_lite0")
    assert (lite0.input_size, lite0.mean, lite0.crop_pct) == (224, (0.5, 0.5, 0.5), 0.875)
    with pytest.raises(ConfigError, match="use it through timm"):
        backbone_info("googlenet")  # auxiliary heads


# (name, input side): timm models and torchvision's ViT/Swin, whose pooling is not a plain average.
OWN_POOLING = [
    ("timm/convnext_atto", 64),
    ("timm/vit_tiny_patch16_224", 224),
    ("timm/resnet10t", 64),
    ("timm/efficientnet_b0", 64),
    ("vit_b_16", 224),
    ("swin_t", 64),
]


def _reference_pre_logits(name: str, backbone, x):
    """The model's own pre-logits features: timm's forward_head(pre_logits=True); torchvision's forward
    with only its final linear layer replaced by the identity."""
    import copy

    import torchvision

    if name.startswith("timm/"):
        reference = copy.deepcopy(backbone.model)
        return reference.forward_head(reference.forward_features(x), pre_logits=True)
    reference = torchvision.models.get_model(name, weights=None)
    own = {k: v for k, v in backbone.model.state_dict().items()}
    missing = reference.load_state_dict(own, strict=False).missing_keys
    assert all(k.startswith(("head", "heads.head")) for k in missing), missing  # only the final layer differs
    if name.startswith("vit"):
        reference.heads.head = torch.nn.Identity()
    else:
        reference.head = torch.nn.Identity()
    return reference.eval()(x)


@pytest.mark.parametrize("name, size", OWN_POOLING)
def test_pooled_features_are_the_models_own_pre_logits(name, size):
    backbone = create_backbone(name, "none").eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(backbone(x), _reference_pre_logits(name, backbone, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [n for n, _ in OWN_POOLING if n.startswith("timm/")])
def test_linear_head_model_has_timms_parameter_count(name):
    import timm

    from tests.helpers import preprocessing
    from tlearn.models.transfer import build_model

    size = 224 if "vit" in name else 64
    ours = build_model(create_backbone(name, "none"), preprocessing(size), num_classes=7)
    theirs = timm.create_model(name[len("timm/") :], pretrained=False, num_classes=7)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ours) == count(theirs)
