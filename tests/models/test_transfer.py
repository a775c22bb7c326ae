"""The transfer model: freezing by spec, frozen BatchNorm, per-stage parameter groups."""

import pytest
import torch

from tests.helpers import preprocessing
from tlearn.config import FreezeSpec
from tlearn.errors import ConfigError
from tlearn.models.backbones import create_backbone
from tlearn.models.heads import MLPHead
from tlearn.models.transfer import build_model


def _model(freeze, name="resnet18", head="linear", size=64):
    model = build_model(create_backbone(name, "none"), preprocessing(size), 10, head)
    model.freeze(FreezeSpec.parse(freeze))
    return model


def test_freeze_backbone_trains_only_the_head():
    model = _model("backbone")
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())


def test_freeze_until_stage():
    model = _model("until:layer3")
    named = dict(model.backbone.model.named_parameters())
    assert not named["layer3.1.conv2.weight"].requires_grad and not named["conv1.weight"].requires_grad
    assert named["layer4.0.conv1.weight"].requires_grad


def test_unknown_stage_lists_the_stages():
    with pytest.raises(ConfigError, match="unknown stage 'layer9'.*layer4"):
        _model("until:layer9")


def test_frozen_batchnorm_statistics_do_not_move():
    model = _model("until:layer3")
    model.train()
    frozen_bn = model.backbone.model.layer2[0].bn1
    free_bn = model.backbone.model.layer4[0].bn1
    before_frozen, before_free = frozen_bn.running_mean.clone(), free_bn.running_mean.clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(torch.randn(8, 3, 64, 64) * 3 + 1), torch.randint(0, 10, (8,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert not frozen_bn.training and free_bn.training
    assert torch.equal(frozen_bn.running_mean, before_frozen)
    assert not torch.equal(free_bn.running_mean, before_free)


def test_mlp_head_flattens_the_feature_map():
    model = _model("backbone", name="vgg11", head="mlp")
    assert isinstance(model.head, MLPHead)
    assert model.head.net[1].in_features == 512 * 2 * 2  # 64 px → 2×2×512 map
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_stage_groups_give_earlier_stages_smaller_lrs():
    model = _model("until:layer1", size=32)
    groups = model.stage_groups(lr_ratio=10.0)
    multipliers = [m for _, m in groups]
    assert multipliers[-1] == 1.0 and multipliers[0] == pytest.approx(0.1)
    assert multipliers == sorted(multipliers)
    trainable = {id(p) for ps, _ in groups for p in ps}
    assert id(model.backbone.model.conv1.weight) not in trainable
    assert id(model.backbone.model.layer4[0].conv1.weight) in trainable


def test_fully_frozen_follows_the_spec():
    assert _model("backbone").fully_frozen and not _model("until:layer2").fully_frozen
