"""The frozen-feature cache: exact parity with recomputation, disk reuse, and when it applies."""

import pytest
import torch

from tests.helpers import preprocessing
from tlearn.config import make_config
from tlearn.models.backbones import create_backbone
from tlearn.models.transfer import build_model
from tlearn.training.cache import plan_cache
from tlearn.training.pipeline import train

BASE = {
    "image_size": 32,
    "batch_size": 32,
    "progress": False,
    "train_size": 100,
    "test_size": 60,
    "val_size": 40,
    "epochs": 2,
    "backbone": "resnet18",
    "weights": "none",
}


def _run(tiny_mnist, tmp_path, name, **values):
    cfg = make_config(
        {
            **BASE,
            "data_dir": str(tiny_mnist),
            "cache_dir": str(tmp_path / "cache"),
            "out": str(tmp_path / name),
            **values,
        }
    )
    return train(cfg).metrics


@pytest.mark.parametrize("freeze", ["backbone", "until:layer3"])
def test_cache_gives_the_same_numbers_as_recomputing(freeze, tiny_mnist, tmp_path, monkeypatch):
    if freeze.startswith("until"):  # recomputing runs the frozen stem folded: extract with it folded too
        import tlearn.training.cache

        monkeypatch.setattr(tlearn.training.cache, "FOLD_MIN_SAMPLES", 1)
    off = _run(tiny_mnist, tmp_path, "off", freeze=freeze, feature_cache="off")
    on = _run(tiny_mnist, tmp_path, "on", freeze=freeze)
    assert off["feature_cache"]["used"] is False and on["feature_cache"]["used"] is True
    assert on["test_accuracy"] == off["test_accuracy"]
    for a, b in zip(on["history"], off["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_acc"] == b["val_acc"]


def test_folded_extraction_matches_recomputing(tiny_mnist, tmp_path, monkeypatch):
    """Large splits are extracted by a BatchNorm-folded copy: same predictions, losses to rounding."""
    import tlearn.inference.engine
    import tlearn.training.cache

    monkeypatch.setattr(tlearn.inference.engine, "FOLD_MIN_SAMPLES", 1)  # fold even the tiny test splits
    monkeypatch.setattr(tlearn.training.cache, "FOLD_MIN_SAMPLES", 1)
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
    prep = preprocessing(32)
    model = build_model(create_backbone("resnet18", "none"), prep, 10)
    for values, used, fragment in [
        ({"freeze": "none"}, False, "nothing is frozen"),
        ({"freeze": "backbone", "feature_cache": "off"}, False, "turned off"),
        ({"freeze": "backbone"}, True, "frozen backbone"),
        ({"freeze": "until:layer2", "image_size": 32}, True, "frozen up to layer2"),
        ({"freeze": "backbone", "resize_from": 24}, False, "progressive resizing"),
    ]:
        plan, reason = plan_cache(make_config(values), model, prep)
        assert (plan is not None) == used and fragment in reason


def test_a_cache_larger_than_half_the_available_memory_is_refused(tiny_mnist, tmp_path, monkeypatch):
    from tlearn.training import cache

    # resnet18 to layer2 at 32 px: 128 x 4 x 4 floats, 8 KB an image; 200 images (100 + 40 + 60) 1.6 MB.
    monkeypatch.setattr(cache, "available_memory", lambda: 3_000_000)
    refused = _run(tiny_mnist, tmp_path, "refused", freeze="until:layer2")
    assert refused["feature_cache"]["used"] is False
    assert refused["feature_cache"]["reason"] == (
        "the frozen activations of 200 images would take 1.6 MB, more than half of the 3.0 MB of memory available"
    )
    assert refused["test_accuracy"] > 0 and not list((tmp_path / "cache").glob("**/*.safetensors"))
    monkeypatch.setattr(cache, "available_memory", lambda: 4_000_000)
    assert _run(tiny_mnist, tmp_path, "kept", freeze="until:layer2")["feature_cache"]["used"] is True


def test_stagewise_forward_matches_for_sequential_cnns():
    for name in ("resnet18", "efficientnet_lite0", "densenet121", "mobilenet_v3_small"):
        backbone = create_backbone(name, "none").eval()
        assert backbone.splittable(), name
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            k = len(backbone.stages) // 2
            split = backbone.forward_from(backbone.forward_until(x, k), k)
            torch.testing.assert_close(split, backbone.forward_features(x))


def test_cached_views_leave_the_head_in_training_mode(tiny_mnist, tmp_path):
    """Extraction switches the shared modules to eval; training must get them back in train mode."""
    from tlearn.training.distributed import launch_environment
    from tlearn.training.run import Run

    cfg = make_config(
        {
            **BASE,
            "data_dir": str(tiny_mnist),
            "cache_dir": str(tmp_path / "c"),
            "freeze": "backbone",
            "augment": "digits",
            "cached_views": 2,
        }
    )
    with launch_environment():
        run = Run.prepare(cfg)
    assert run.feed.cache.used and run.feed.module.training and run.model.head.training


def test_one_batch_size_search_spans_the_splits(tmp_path):
    """Splits too small to tune on alone share one search: it settles during the first and holds after."""
    from tlearn.data.splits import ImageSplit
    from tlearn.training.cache import CachePlan, extract

    prep = preprocessing(32)
    model = build_model(create_backbone("resnet18", "none"), prep, 10).eval()
    plan = CachePlan("backbone", -1, pooled=True)
    splits = [
        ImageSplit(torch.randint(0, 255, (n, 1, 28, 28), dtype=torch.uint8), torch.zeros(n).long(), ["a"])
        for n in (600, 300)
    ]
    first = extract(model, prep, plan, splits[0], "cpu", str(tmp_path))
    settled = plan.tuner.multiple
    assert not plan.tuner._trials and settled in plan.tuner.MULTIPLES
    second = extract(model, prep, plan, splits[1], "cpu", str(tmp_path))
    assert plan.tuner.multiple == settled and first.shape == (600, 512) and second.shape == (300, 512)
