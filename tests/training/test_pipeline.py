"""End-to-end training on small real/generated subsets: run dir, metrics, reproducibility, presets."""

import csv
import json

import pytest
import torch
import yaml

from tests.helpers import CLASSES, make_folder
from tlearn.config import load_preset, make_config, preset_names
from tlearn.runs.spec import load_model
from tlearn.runtime import cpu_model
from tlearn.training.pipeline import train

FAST = {"image_size": 32, "batch_size": 32, "progress": False, "val_size": 100}


def test_default_pipeline_learns_real_mnist(mnist_root, tmp_path):
    cfg = make_config(
        {
            **FAST,
            "data_dir": str(mnist_root),
            "train_size": 300,
            "test_size": 300,
            "epochs": 4,
            "image_size": 48,
            "augment": "digits",
            "out": str(tmp_path / "run"),
        }
    )
    result = train(cfg)
    m = result.metrics
    assert m["complete"] is True and m["test_samples"] == 300 and m["train_samples"] == 300
    assert m["test_accuracy"] > 0.6  # chance is 0.1
    assert m["machine"]["cpu"] == cpu_model() and m["machine"]["cpu_threads"] == torch.get_num_threads()
    for name in (
        "config.yaml",
        "metrics.csv",
        "metrics.json",
        "accuracy.png",
        "loss.png",
        "confusion_matrix.png",
        "model.safetensors",
        "model.json",
    ):
        assert (result.run_dir / name).is_file(), name
    assert (result.run_dir / "checkpoints" / "last.ckpt").is_file()
    on_disk = json.loads((result.run_dir / "metrics.json").read_text())
    assert on_disk["test_accuracy"] == m["test_accuracy"] and set(on_disk["per_class"]) == {str(i) for i in range(10)}
    rows = list(csv.DictReader((result.run_dir / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert [float(r["train_loss"]) for r in rows] == [h["train_loss"] for h in m["history"]]


def test_saved_model_reloads_without_pickle_and_gives_the_test_figure(tiny_mnist, tmp_path):
    from tlearn.data.dataset import build_splits
    from tlearn.inference import evaluate_split

    cfg = make_config(
        {
            **FAST,
            "data_dir": str(tiny_mnist),
            "train_size": 100,
            "test_size": 100,
            "epochs": 1,
            "backbone": "resnet18",
            "weights": "none",
            "out": str(tmp_path / "run"),
        }
    )
    result = train(cfg)
    model, spec = load_model(result.run_dir)
    assert list(spec.classes) == [str(i) for i in range(10)] and spec.preprocessing.image_size == 32
    from tlearn.data.augment import BatchPreprocessor

    metrics = evaluate_split(model, BatchPreprocessor(spec.preprocessing), build_splits(cfg).test)
    assert metrics["accuracy"] == result.metrics["test_accuracy"]


def test_same_seed_same_numbers(tiny_mnist, tmp_path):
    def run(seed, name):
        cfg = make_config(
            {
                **FAST,
                "data_dir": str(tiny_mnist),
                "train_size": 100,
                "test_size": 50,
                "val_size": 50,
                "epochs": 2,
                "augment": "digits",
                "backbone": "resnet18",
                "weights": "none",
                "seed": seed,
                "out": str(tmp_path / name),
            }
        )
        return train(cfg).metrics

    a, b, c = run(0, "a"), run(0, "b"), run(1, "c")
    assert a["history"][-1]["train_loss"] == b["history"][-1]["train_loss"]
    assert a["test_accuracy"] == b["test_accuracy"]
    assert a["history"][-1]["train_loss"] != c["history"][-1]["train_loss"]


def test_saved_config_reproduces_the_run(tiny_mnist, tmp_path):
    cfg = make_config(
        {
            **FAST,
            "data_dir": str(tiny_mnist),
            "train_size": 60,
            "test_size": 40,
            "val_source": "none",
            "epochs": 1,
            "backbone": "resnet18",
            "weights": "none",
            "out": str(tmp_path / "first"),
        }
    )
    first = train(cfg)
    saved = yaml.safe_load((first.run_dir / "config.yaml").read_text())
    assert saved["image_size"] == 32 and saved["out"] is None and saved["freeze"] == "none"
    second = train(make_config({**saved, "out": str(tmp_path / "second")}))
    assert second.metrics["test_accuracy"] == first.metrics["test_accuracy"]
    assert second.metrics["history"][0]["train_loss"] == first.metrics["history"][0]["train_loss"]


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_builds_and_trains_a_step(preset, tiny_mnist, tmp_path):
    values = load_preset(preset)
    # Offline: VGG16/ResNet-50 ImageNet weights are not in the (empty) cache, so use random init;
    # the packaged Lite0 weights are always there. Small images keep the step cheap.
    if values["backbone"] != "efficientnet_lite0":
        values["weights"] = "none"
    values.update(
        data_dir=str(tiny_mnist),
        train_size=40,
        test_size=20,
        val_size=20,
        epochs=1,
        batch_size=20,
        image_size=32,
        progress=False,
        out=str(tmp_path / preset),
    )
    result = train(make_config(values))
    assert result.metrics["complete"] and result.metrics["epochs"] == 1


def test_frozen_backbone_keeps_batchnorm_statistics(tiny_mnist, tmp_path):
    cfg = make_config(
        {
            **FAST,
            "data_dir": str(tiny_mnist),
            "train_size": 60,
            "test_size": 20,
            "val_source": "none",
            "epochs": 1,
            "freeze": "backbone",
            "out": str(tmp_path / "frozen"),
        }
    )
    from tlearn.models.backbones import create_backbone

    reference = create_backbone("efficientnet_lite0", "imagenet").state_dict()
    model, _ = load_model(train(cfg).run_dir)
    trained = {k[len("backbone.") :]: v for k, v in model.state_dict().items() if k.startswith("backbone.")}
    for key in ("model.bn1.running_mean", "model.blocks.3.0.bn1.running_var", "model.conv_stem.weight"):
        assert torch.equal(trained[key], reference[key]), key


def test_test_time_views_on_the_cached_path_run_the_whole_model(mnist_root, tmp_path):
    """The cache holds one view per test image, so ``--tta`` evaluates the whole model on images;
    its single-view figure is the plain run's accuracy (same seed, same training)."""
    base = {
        **FAST,
        "data_dir": str(mnist_root),
        "train_size": 300,
        "test_size": 300,
        "epochs": 3,
        "image_size": 48,
        "freeze": "backbone",
        "augment": "none",
        "cache_dir": str(tmp_path / "cache"),
    }
    plain = train(make_config({**base, "out": str(tmp_path / "plain")})).metrics
    views = train(make_config({**base, "tta": 5, "out": str(tmp_path / "tta")})).metrics
    assert plain["feature_cache"]["used"] and views["feature_cache"]["used"]
    assert plain["tta_views"] == 1 and views["tta_views"] == 5
    assert views["test_accuracy_single_view"] == pytest.approx(plain["test_accuracy"], abs=1 / 300 + 1e-9)
    assert views["test_loss"] != plain["test_loss"] and views["test_accuracy"] > 0.5


def test_folder_dataset_trains_and_class_names_flow_into_outputs(tmp_path):
    make_folder(tmp_path / "data", bad_files=0)
    cfg = make_config(
        {
            "dataset": "folder",
            "data_dir": str(tmp_path / "data"),
            "train_size": None,
            "backbone": "resnet18",
            "weights": "none",
            "image_size": 32,
            "epochs": 1,
            "batch_size": 12,
            "progress": False,
            "out": str(tmp_path / "run"),
        }
    )
    result = train(cfg)
    m = result.metrics
    assert m["train_samples"] == 36 and m["val_samples"] == 12 and m["test_samples"] == 12
    assert list(m["per_class"]) == CLASSES
    assert json.loads((result.run_dir / "model.json").read_text())["classes"] == CLASSES
    assert "circle" in (result.run_dir / "report.html").read_text()


def test_a_folder_with_odd_and_broken_files_trains_to_the_end(tmp_path):
    """CMYK, 16-bit, EXIF-rotated and animated files are used; a truncated JPEG and a text file named
    .jpg are skipped, counted in the warning and in metrics.json."""
    from tests.helpers import write_odd_images

    root = make_folder(tmp_path / "data", counts={"train": 6, "test": 2}, bad_files=0)
    files = write_odd_images(root / "train" / CLASSES[0])
    cfg = make_config(
        {
            "dataset": "folder",
            "data_dir": str(root),
            "backbone": "resnet18",
            "weights": "none",
            "image_size": 32,
            "epochs": 1,
            "batch_size": 8,
            "val_source": "none",
            "progress": False,
            "out": str(tmp_path / "run"),
        }
    )
    with pytest.warns(UserWarning, match="skipped 2 file"):
        metrics = train(cfg).metrics
    assert metrics["complete"] and metrics["skipped_files"] == 2
    assert metrics["train_samples"] == 6 * 3 + 4  # the four odd files that decode are trained on
    assert sorted(metrics["skipped_examples"]) == sorted(str(files[k]) for k in ("truncated", "text"))


@pytest.mark.parametrize("backbone, size", [("timm/convnext_atto", 32), ("timm/vit_tiny_patch16_224", 224)])
def test_timm_convnext_and_vit_train_end_to_end(backbone, size, tiny_mnist, tmp_path):
    cfg = make_config(
        {
            **FAST,
            "data_dir": str(tiny_mnist),
            "train_size": 40,
            "test_size": 20,
            "val_source": "none",
            "epochs": 1,
            "backbone": backbone,
            "weights": "none",
            "image_size": size,
            "batch_size": 20,
            "out": str(tmp_path / "run"),
        }
    )
    result = train(cfg)
    assert result.metrics["complete"] and result.metrics["test_samples"] == 20
    model, _ = load_model(result.run_dir)
    assert model(torch.zeros(2, 3, size, size)).shape == (2, 10)
