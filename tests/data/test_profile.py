"""Data-aware defaults: recognising what a folder holds and layering its preset under files and flags."""

import pytest
from PIL import Image

from tests.helpers import make_folder, write_tiny_mnist
from tlearn.data.profile import detect, resolve_with_data_defaults


def _small(root, mode="L", side=28, classes=("a", "b")):
    for name in classes:
        (root / "train" / name).mkdir(parents=True)
        for i in range(3):
            Image.new(mode, (side, side), 40 * i).save(root / "train" / name / f"{i}.png")
    return root


def test_each_kind_of_data_gets_its_preset(tmp_path):
    assert detect(str(write_tiny_mnist(tmp_path / "m")), None).preset == "default"
    photos = detect(str(make_folder(tmp_path / "p", counts={"train": 2}, bad_files=0, size=96)), None)
    assert (photos.dataset, photos.preset) == ("folder", "photos")
    assert detect(str(_small(tmp_path / "g")), None).preset == "default"  # MNIST written as PNG files
    colour = detect(str(_small(tmp_path / "c", "RGB", 32)), None)
    assert colour.preset == "small-images" and colour.extra == {"train_size": None, "eval_crop": "none"}
    (tmp_path / "cifar" / "cifar-10-batches-py").mkdir(parents=True)
    assert detect(str(tmp_path / "cifar"), None).dataset == "cifar10"
    flat = tmp_path / "flat"  # class folders without train/
    for name in ("x", "y"):
        (flat / name).mkdir(parents=True)
        Image.new("RGB", (300, 200)).save(flat / name / "1.jpg")
    assert detect(str(flat), None).preset == "photos"


def test_explicit_dataset_and_csv(tmp_path):
    assert detect(None, None, "kmnist").preset == "default"
    assert detect(None, None, "svhn").preset == "small-images"
    make_folder(tmp_path / "imgs", counts={"train": 2}, bad_files=0)
    (tmp_path / "d.csv").write_text("path,label\nimgs/train/circle/0.png,circle\nimgs/train/square/0.png,square\n")
    csv_profile = detect(None, str(tmp_path / "d.csv"))
    assert csv_profile.dataset == "csv" and csv_profile.preset == "small-images"  # 40-px pictures


def test_layering_preset_then_file_then_flags(tmp_path):
    root = make_folder(tmp_path / "p", counts={"train": 2}, bad_files=0, size=96)
    config, profile = resolve_with_data_defaults(None, None, {"data_dir": str(root)})
    assert profile.preset == "photos" and config.dataset == "folder" and config.train_size is None
    assert config.image_size == 224 and "photos" in config.description
    (tmp_path / "c.yaml").write_text("image_size: 96\nepochs: 3\n")
    config, _ = resolve_with_data_defaults(None, tmp_path / "c.yaml", {"data_dir": str(root), "epochs": 5})
    assert (config.image_size, config.epochs) == (96, 5)
    config, profile = resolve_with_data_defaults("default", None, {"data_dir": str(root), "dataset": "folder"})
    assert profile is None and config.train_size == 1000  # an explicit preset is taken as it is


def test_a_bad_value_still_names_its_source(tmp_path):
    from tlearn.errors import ConfigError

    (tmp_path / "c.yaml").write_text("epochs: ten\n")
    with pytest.raises(ConfigError, match="c.yaml: invalid value for 'epochs'"):
        resolve_with_data_defaults(None, tmp_path / "c.yaml", {})


def test_another_backbone_keeps_the_photo_defaults_valid(tmp_path):
    """The photos preset freezes Lite0's stages up to blocks.5; with another backbone it uses that
    model's native size and trains a linear head on its frozen features."""
    root = make_folder(tmp_path / "p", counts={"train": 2}, bad_files=0, size=96)
    config, _ = resolve_with_data_defaults(None, None, {"data_dir": str(root), "backbone": "resnet18"})
    assert str(config.freeze) == "backbone" and config.image_size is None
    config, _ = resolve_with_data_defaults(
        None, None, {"data_dir": str(root), "backbone": "resnet18", "freeze": "until:layer3"}
    )
    assert str(config.freeze) == "until:layer3"
    lite0, _ = resolve_with_data_defaults(None, None, {"data_dir": str(root)})
    assert str(lite0.freeze) == "until:blocks.5" and lite0.image_size == 224
