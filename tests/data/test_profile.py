"""Data-aware defaults: what a folder holds and which preset suits it (layering them: tests/cli/test_app.py)."""

from PIL import Image

from tests.helpers import make_folder, write_tiny_mnist
from tlearn.data.profile import detect


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
