"""The frozen-feature cache: exact parity with recomputation, disk reuse, and when it applies."""

import pytest
import torch

from tlearn.backbones import create_backbone
from tlearn.config import make_config
from tlearn.features import plan_cache
from tlearn.model import build_model
from tlearn.train import train

BASE = {"image_size": 32, "batch_size": 32, "progress": False, "train_size": 100, "test_size": 60, "val_size": 40,
        "epochs": 2, "backbone": "resnet18", "weights": "none"}


def _run(tiny_mnist, tmp_path, name, **values):
    cfg = make_config({**BASE, "data_dir": str(tiny_mnist), "cache_dir": str(tmp_path / "cache"), "out": str(tmp_path / name), **values})
    return train(cfg).metrics


@pytest.mark.parametrize("freeze", ["backbone", "until:layer3"])
def test_cache_gives_the_same_numbers_as_recomputing(freeze, tiny_mnist, tmp_path):
    off = _run(tiny_mnist, tmp_path, "off", freeze=freeze, feature_cache="off")
    on = _run(tiny_mnist, tmp_path, "on", freeze=freeze)
    assert off["feature_cache"]["used"] is False and on["feature_cache"]["used"] is True
    assert on["test_accuracy"] == off["test_accuracy"]
    for a, b in zip(on["history"], off["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_acc"] == b["val_acc"]


def test_folded_extraction_matches_recomputing(tiny_mnist, tmp_path, monkeypatch):
    """Large splits are extracted by a BatchNorm-folded copy: same predictions, losses to rounding."""
    import tlearn.evaluation

    monkeypatch.setattr(tlearn.evaluation, "FOLD_MIN_SAMPLES", 1)  # fold even the tiny test splits
    off = _run(tiny_mnist, tmp_path, "off", freeze="backbone", feature_cache="off")
    on = _run(tiny_mnist, tmp_path, "on", freeze="backbone")
    assert on["feature_cache"]["used"] and on["test_accuracy"] == off["test_accuracy"]
    for a, b in zip(on["history"], off["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-3)
        assert a["val_acc"] == b["val_acc"]


def test_second_run_reuses_the_disk_cache(tiny_mnist, tmp_path):
    first = _run(tiny_mnist, tmp_path, "a", freeze="backbone")
    second = _run(tiny_mnist, tmp_path, "b", freeze="backbone")
    assert [s["hit"] for s in first["feature_cache"]["splits"]] == [False, False, False]
    assert [s["hit"] for s in second["feature_cache"]["splits"]] == [True, True, True]
    assert second["test_accuracy"] == first["test_accuracy"]
    # Different frozen weights (another random init) must not hit the same entries.
    third = _run(tiny_mnist, tmp_path, "c", freeze="backbone", seed=5)
    assert not any(s["hit"] for s in third["feature_cache"]["splits"])


def test_augmentation_disables_the_exact_cache_unless_views_are_asked_for(tiny_mnist, tmp_path):
    plain = _run(tiny_mnist, tmp_path, "aug", freeze="backbone", augment="digits")
    assert plain["feature_cache"]["used"] is False and "augmentation" in plain["feature_cache"]["reason"]
    views = _run(tiny_mnist, tmp_path, "views", freeze="backbone", augment="digits", cached_views=3)
    assert views["feature_cache"]["used"] is True and views["feature_cache"]["views"] == 3
    assert views["feature_cache"]["splits"][0]["views"] == 3


def test_plan_reasons():
    model = build_model(create_backbone("resnet18", "none"), 10, "linear", 32, 3)
    for values, used, fragment in [
        ({"freeze": "none"}, False, "nothing is frozen"),
        ({"freeze": "backbone", "feature_cache": "off"}, False, "turned off"),
        ({"freeze": "backbone"}, True, "frozen backbone"),
        ({"freeze": "until:layer2", "image_size": 32}, True, "frozen up to layer2"),
    ]:
        plan, reason = plan_cache(make_config(values), model)
        assert (plan is not None) == used and fragment in reason


def test_stagewise_forward_matches_for_sequential_cnns():
    for name in ("resnet18", "efficientnet_lite0", "densenet121", "mobilenet_v3_small"):
        backbone = create_backbone(name, "none").eval()
        assert backbone.splittable(), name
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            k = len(backbone.stages) // 2
            torch.testing.assert_close(backbone.forward_from(backbone.forward_until(x, k), k), backbone(x))


def _randomise_bn(module):
    gen = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.2)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18", "mobilenet_v3_small"])
def test_batchnorm_folding_keeps_the_features(name):
    from tlearn.evaluation import fold_batchnorm, folded_copy
    from tlearn.features import FrozenPart
    from tlearn.transforms import BatchPreprocessor, make_preprocessing

    model = build_model(create_backbone(name, "imagenet" if name == "efficientnet_lite0" else "none"), 10, "linear", 64, 3)
    _randomise_bn(model)
    frozen = FrozenPart(model, -1, pooled=True).eval()
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    prep = BatchPreprocessor(make_preprocessing(64, 3, "imagenet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    fast = folded_copy(frozen, prep(images))
    assert fast is not frozen and sum(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules()) < \
        sum(isinstance(m, torch.nn.BatchNorm2d) for m in frozen.modules())
    with torch.no_grad():
        x = prep(images)
        torch.testing.assert_close(fast(x), frozen(x), rtol=1e-4, atol=1e-4)
    assert fold_batchnorm(torch.nn.Linear(2, 2)) == 0


def test_folding_is_refused_when_the_order_lies():
    """A norm declared after its conv but applied before it must not be folded into it."""
    from tlearn.evaluation import folded_copy
    from tlearn.transforms import BatchPreprocessor, make_preprocessing

    class PreNorm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(3)

        def forward(self, x):
            return self.conv(self.bn(x))

    net = PreNorm()
    _randomise_bn(net)
    net.eval()
    prep = BatchPreprocessor(make_preprocessing(16, 3, "none", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)))
    images = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    assert folded_copy(net, prep(images)) is net


def test_cached_views_leave_the_head_in_training_mode(tiny_mnist, tmp_path):
    """Extraction switches the shared modules to eval; training must get them back in train mode."""
    from tlearn.train import fit_inputs, prepare

    cfg = make_config({**BASE, "data_dir": str(tiny_mnist), "cache_dir": str(tmp_path / "c"), "freeze": "backbone",
                       "augment": "digits", "cached_views": 2})
    prepared = prepare(cfg)
    fit = fit_inputs(prepared)
    assert fit.cache["used"] and fit.module.training and prepared.model.head.training
