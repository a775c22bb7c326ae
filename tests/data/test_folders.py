"""Datasets of image files: class folders and CSV files."""

import pytest
import torch

from tests.helpers import CLASSES, make_folder, preprocessing
from tlearn.data.folders import read_csv_dataset, scan_folder
from tlearn.errors import DataError

PREP = preprocessing(24, data_channels=3, crop_pct=0.875)


def test_folder_scan_counts_skipped_files(tmp_path):
    with pytest.warns(UserWarning, match="skipped 2 file"):
        splits, skipped = scan_folder(make_folder(tmp_path, bad_files=2), PREP)
    assert splits["train"].classes == CLASSES and len(splits["train"]) == 36 and len(splits["test"]) == 12
    assert torch.bincount(splits["train"].labels).tolist() == [12, 12, 12]
    assert len(skipped.paths) == 2 and all("broken" in p for p in skipped.paths)
    # decoded once, at the working size (24 / 0.875 = 27 px squares), kept in memory
    assert splits["train"].images.shape == (36, 3, 27, 27)


def test_val_and_test_may_lack_a_class_but_not_add_one(tmp_path):
    make_folder(tmp_path / "a", counts={"train": 3}, bad_files=0)
    (tmp_path / "a" / "test" / "circle").mkdir(parents=True)
    (tmp_path / "a" / "train" / "circle" / "0.png").rename(tmp_path / "a" / "test" / "circle" / "0.png")
    splits, _ = scan_folder(tmp_path / "a", PREP)
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
    with pytest.warns(UserWarning, match="skipped 1 file"):
        split, skipped = read_csv_dataset(tmp_path / "data.csv", PREP)
    assert len(split) == 9 and split.classes == sorted(CLASSES) and skipped.paths[0].endswith("missing.png")
    (tmp_path / "bad.csv").write_text("file,class\na.png,x\n")
    with pytest.raises(DataError, match="'path' and 'label'"):
        read_csv_dataset(tmp_path / "bad.csv", PREP)


def test_class_folders_without_train_and_data_beyond_the_memory_budget(tmp_path, monkeypatch):
    import tlearn.data.folders as folders
    from tlearn.data.splits import FileSplit

    make_folder(tmp_path / "flat", counts={"train": 3}, bad_files=0)
    for name in CLASSES:  # the classes directly below the root
        (tmp_path / "flat" / "train" / name).rename(tmp_path / "flat" / name)
    (tmp_path / "flat" / "train").rmdir()
    splits, _ = scan_folder(tmp_path / "flat", PREP)
    assert set(splits) == {"train"} and len(splits["train"]) == 9
    monkeypatch.setattr(folders, "MEMORY_BUDGET_BYTES", 1000)
    streamed, _ = scan_folder(tmp_path / "flat", PREP)
    assert isinstance(streamed["train"], FileSplit) and len(streamed["train"]) == 9
    assert torch.equal(streamed["train"].item(4), splits["train"].item(4))  # the same image, decoded again
