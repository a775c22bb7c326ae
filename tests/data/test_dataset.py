"""A run's splits: sizes, disjointness, where validation and test images come from."""

import pytest
import torch

from tests.helpers import make_folder, preprocessing
from tlearn.config import make_config
from tlearn.data.dataset import build_splits
from tlearn.errors import DataError

PHOTOS = preprocessing(24, data_channels=3, crop_pct=0.875)


def test_splits_are_disjoint_and_sized(mnist_root):
    cfg = make_config({"data_dir": str(mnist_root), "train_size": 1000, "val_size": 200, "test_size": 500})
    splits = build_splits(cfg)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1000, 200, 500)
    counts = torch.bincount(splits.train.labels)
    assert counts.min() >= 85 and counts.max() <= 120  # MNIST's own class frequencies, scaled


def test_more_samples_than_exist(tiny_mnist):
    cfg = make_config({"data_dir": str(tiny_mnist), "train_size": 5000})
    with pytest.raises(DataError, match="more than the 300 training images"):
        build_splits(cfg)


def test_holdout_validation_never_overlaps_training(tiny_mnist):
    splits = build_splits(make_config({"data_dir": str(tiny_mnist), "train_size": 200, "val_size": 50}))
    assert len(splits.val) == 50 and splits.val_source == "holdout"
    train_rows = {tuple(img.flatten()[:200].tolist()) for img in splits.train.images}
    assert not any(tuple(img.flatten()[:200].tolist()) in train_rows for img in splits.val.images)
    on_test = build_splits(make_config({"data_dir": str(tiny_mnist), "train_size": 200, "val_source": "test"}))
    assert on_test.val is on_test.test


def test_missing_test_uses_val_and_missing_both_splits_train(tmp_path):
    make_folder(tmp_path / "a", counts={"train": 10, "val": 5}, bad_files=0)
    cfg = make_config({"dataset": "folder", "data_dir": str(tmp_path / "a"), "train_size": None, "val_size": 6})
    splits = build_splits(cfg, PHOTOS)
    assert len(splits.test) == 15 and splits.val is not None and len(splits.train) + len(splits.val) == 30
    make_folder(tmp_path / "b", counts={"train": 10}, bad_files=0)
    values = {"dataset": "folder", "data_dir": str(tmp_path / "b"), "train_size": None, "val_source": "none"}
    splits = build_splits(make_config(values), PHOTOS)
    assert len(splits.test) == 6 and len(splits.train) == 24
    assert torch.bincount(splits.test.labels).tolist() == [2, 2, 2]
    held_out = {hash(img.numpy().tobytes()) for img in splits.test.images}
    assert not held_out & {hash(img.numpy().tobytes()) for img in splits.train.images}


def test_files_need_the_preprocessing_and_a_folder(tmp_path):
    make_folder(tmp_path / "a", counts={"train": 2}, bad_files=0)
    with pytest.raises(ValueError, match="preprocessing"):
        build_splits(make_config({"dataset": "folder", "data_dir": str(tmp_path / "a")}))
    with pytest.raises(DataError, match="needs --data-dir"):
        build_splits(make_config({"dataset": "folder"}), PHOTOS)
