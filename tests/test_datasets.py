"""Datasets beyond MNIST: class folders, CSV files, the other IDX sets, CIFAR's safe unpickling."""

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import synthetic_digits, write_idx_images, write_idx_labels
from tlearn.config import make_config
from tlearn.data import build_splits
from tlearn.datasets import FileSplit, load_cifar, read_csv_dataset, scan_folder
from tlearn.errors import DataError
from tlearn.train import train

CLASSES = ["circle", "square", "stripe"]


def _photo(kind: int, rng, size: int) -> Image.Image:
    """A small colour picture whose class is its pattern (learnable from a few examples)."""
    img = rng.integers(0, 60, size=(size, size, 3)).astype(np.uint8)
    if kind == 0:
        yy, xx = np.mgrid[:size, :size]
        img[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2] = (230, 40, 40)
    elif kind == 1:
        img[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (40, 230, 40)
    else:
        img[:, ::6] = (40, 40, 230)
    return Image.fromarray(img)


def make_folder(root, counts={"train": 12, "val": 4, "test": 4}, bad_files=1, classes=CLASSES):
    rng = np.random.default_rng(0)
    for split, n in counts.items():
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                fmt = ["png", "jpg", "bmp"][i % 3]
                _photo(k % 3, rng, 40 + 8 * (i % 3)).save(folder / f"{i}.{fmt}")
    for i in range(bad_files):
        (root / "train" / classes[0] / f"broken{i}.png").write_bytes(b"not an image")
    return root


def test_folder_scan_counts_skipped_files(tmp_path):
    with pytest.warns(UserWarning, match="skipped 2 file"):
        splits = scan_folder(make_folder(tmp_path, bad_files=2))
    assert splits["train"].classes == CLASSES and len(splits["train"]) == 36 and len(splits["test"]) == 12


def test_folder_dataset_trains_and_class_names_flow_into_outputs(tmp_path):
    make_folder(tmp_path / "data", bad_files=0)
    cfg = make_config({"dataset": "folder", "data_dir": str(tmp_path / "data"), "train_size": None, "backbone": "resnet18",
                       "weights": "none", "image_size": 32, "epochs": 1, "batch_size": 12, "progress": False,
                       "out": str(tmp_path / "run")})
    result = train(cfg)
    m = result.metrics
    assert m["train_samples"] == 36 and m["val_samples"] == 12 and m["test_samples"] == 12
    assert list(m["per_class"]) == CLASSES
    assert json.loads((result.run_dir / "model.json").read_text())["classes"] == CLASSES
    assert "circle" in (result.run_dir / "report.html").read_text()


def test_missing_test_uses_val_and_missing_both_splits_train(tmp_path):
    make_folder(tmp_path / "a", counts={"train": 10, "val": 5}, bad_files=0)
    cfg = make_config({"dataset": "folder", "data_dir": str(tmp_path / "a"), "train_size": None, "val_size": 6})
    splits = build_splits(cfg)
    assert len(splits.test) == 15 and splits.val is not None and len(splits.train) + len(splits.val) == 30
    make_folder(tmp_path / "b", counts={"train": 10}, bad_files=0)
    splits = build_splits(make_config({"dataset": "folder", "data_dir": str(tmp_path / "b"), "train_size": None, "val_source": "none"}))
    assert len(splits.test) == 6 and len(splits.train) == 24
    assert torch.bincount(splits.test.labels).tolist() == [2, 2, 2]
    assert not set(map(str, splits.test.paths)) & set(map(str, splits.train.paths))


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (lambda root: None, "has no train/ folder"),
        (lambda root: (root / "train" / "only").mkdir(parents=True), "at least 2 class folders"),
        (lambda root: [(root / "train" / c).mkdir(parents=True) for c in ("a", "b")], "no usable images"),
    ],
)
def test_bad_folders(tmp_path, setup, fragment):
    root = tmp_path / "d"
    root.mkdir()
    setup(root)
    with pytest.raises(DataError, match=fragment):
        scan_folder(root)


def test_csv_dataset(tmp_path):
    make_folder(tmp_path / "imgs", counts={"train": 3}, bad_files=0)
    lines = ["path,label"] + [f"imgs/train/{c}/{i}.{['png', 'jpg', 'bmp'][i]},{c}" for c in CLASSES for i in range(3)]
    lines.append("imgs/missing.png,circle")
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match="skipped 1 row"):
        split = read_csv_dataset(tmp_path / "data.csv")
    assert isinstance(split, FileSplit) and len(split) == 9 and split.classes == sorted(CLASSES)
    (tmp_path / "bad.csv").write_text("file,class\na.png,x\n")
    with pytest.raises(DataError, match="'path' and 'label'"):
        read_csv_dataset(tmp_path / "bad.csv")


def test_file_split_eval_view_is_centre_cropped(tmp_path):
    make_folder(tmp_path, counts={"train": 1}, bad_files=0)
    split = scan_folder(tmp_path)["train"]
    split.configure(24, 0.875)
    assert split.item(0).shape == (3, 24, 24) and split.item(0).dtype == torch.uint8
    batch = next(split.batches(2))
    assert batch.shape == (2, 3, 24, 24)


@pytest.mark.parametrize("name, folder", [("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")])
def test_other_idx_datasets_have_their_class_names(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 50), ("t10k", 20)):
        images, labels = synthetic_digits(n)
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
    splits = build_splits(make_config({"dataset": name, "data_dir": str(tmp_path), "train_size": 20, "val_size": 10}))
    assert len(splits.classes) == 10 and splits.classes[0] != "0"


def _write_cifar(folder, payload_by_file):
    folder.mkdir(parents=True)
    for name, payload in payload_by_file.items():
        with open(folder / name, "wb") as handle:
            pickle.dump(payload, handle)


def test_cifar_is_read_without_running_code(tmp_path):
    data = {"data": np.zeros((4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
    files = {f"data_batch_{i}": data for i in range(1, 6)}
    files.update(test_batch=data, **{"batches.meta": {"label_names": ["a", "b", "c", "d"]}})
    _write_cifar(tmp_path / "cifar-10-batches-py", files)
    split = load_cifar(tmp_path, "cifar10", train=True)
    assert split.images.shape == (20, 3, 32, 32) and split.classes == ["a", "b", "c", "d"]

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"data": Evil(), "labels": [0]}))
    with pytest.raises(DataError, match="refusing to load"):
        load_cifar(tmp_path, "cifar10", train=False)
    assert not marker.exists()


def test_svhn_mat_files(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    from tlearn.datasets import load_svhn

    for name, n in (("train_32x32.mat", 20), ("test_32x32.mat", 10)):
        x = np.random.default_rng(0).integers(0, 255, size=(32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(-1, 1)  # SVHN stores digit 0 as 10
        scipy_io.savemat(tmp_path / name, {"X": x, "y": y})
    split = load_svhn(tmp_path, train=True)
    assert split.images.shape == (20, 3, 32, 32) and split.labels.tolist()[:10] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]


def test_commands_work_on_a_folder_trained_run(tmp_path):
    """evaluate, predict and export on a run trained from a generated folder dataset."""
    import subprocess
    import sys

    from tlearn.export import export_onnx
    from tlearn.inference import evaluate_run, load_run, predict_images, read_image

    make_folder(tmp_path / "data", counts={"train": 16, "test": 6}, bad_files=0)
    cfg = make_config({"dataset": "folder", "data_dir": str(tmp_path / "data"), "train_size": None, "val_source": "none",
                       "backbone": "resnet18", "weights": "none", "image_size": 32, "epochs": 2, "batch_size": 16,
                       "progress": False, "out": str(tmp_path / "run")})
    result = train(cfg)
    run = load_run(result.run_dir)
    assert run.classes == CLASSES and run.spec["eval_crop_pct"] == pytest.approx(0.875)
    again = evaluate_run(run)
    assert again["samples"] == 18 and again["accuracy"] == pytest.approx(result.metrics["test_accuracy"])
    files = sorted((tmp_path / "data" / "test").rglob("*.png"))
    probabilities = predict_images(run, [read_image(p, 3) for p in files])
    assert probabilities.shape == (len(files), 3)
    info = export_onnx(run, tmp_path / "m.onnx")
    assert info["max_abs_diff"] < 1e-3 and json.loads(info["metadata"]["class_names"]) == CLASSES
    cli = subprocess.run([sys.executable, "-m", "tlearn.cli", "predict", str(result.run_dir), str(tmp_path / "data" / "test")],
                         capture_output=True, text=True)
    assert cli.returncode == 0 and "circle" in cli.stdout
