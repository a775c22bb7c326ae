"""Datasets of image files: class folders and CSV files."""

import pytest
import torch

from tests.helpers import CLASSES, make_folder, preprocessing
from tlearn.data.folders import read_csv_dataset, scan_folder
from tlearn.data.splits import FileSplit
from tlearn.errors import DataError

PREP = preprocessing(24, data_channels=3, crop_pct=0.875)


def test_folder_scan_counts_skipped_files(tmp_path):
    with pytest.warns(UserWarning, match="skipped 2 file"):
        splits = scan_folder(make_folder(tmp_path, bad_files=2), PREP)
    assert splits["train"].classes == CLASSES and len(splits["train"]) == 36 and len(splits["test"]) == 12
    assert torch.bincount(splits["train"].labels).tolist() == [12, 12, 12]


def test_val_and_test_may_lack_a_class_but_not_add_one(tmp_path):
    make_folder(tmp_path / "a", counts={"train": 3}, bad_files=0)
    (tmp_path / "a" / "test" / "circle").mkdir(parents=True)
    (tmp_path / "a" / "train" / "circle" / "0.png").rename(tmp_path / "a" / "test" / "circle" / "0.png")
    splits = scan_folder(tmp_path / "a", PREP)
    assert len(splits["test"]) == 1 and splits["test"].labels.tolist() == [0]
    (tmp_path / "a" / "test" / "triangle").mkdir()
    with pytest.raises(DataError, match="not in train/: triangle"):
        scan_folder(tmp_path / "a", PREP)


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
        scan_folder(root, PREP)


def test_csv_dataset(tmp_path):
    make_folder(tmp_path / "imgs", counts={"train": 3}, bad_files=0)
    lines = ["path,label"] + [f"imgs/train/{c}/{i}.{['png', 'jpg', 'bmp'][i]},{c}" for c in CLASSES for i in range(3)]
    lines.append("imgs/missing.png,circle")
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match="skipped 1 row"):
        split = read_csv_dataset(tmp_path / "data.csv", PREP)
    assert isinstance(split, FileSplit) and len(split) == 9 and split.classes == sorted(CLASSES)
    (tmp_path / "bad.csv").write_text("file,class\na.png,x\n")
    with pytest.raises(DataError, match="'path' and 'label'"):
        read_csv_dataset(tmp_path / "bad.csv", PREP)
