import pytest
import torch

from tlearn.config import make_config
from tlearn.data import build_splits, load_mnist, resolve_data_dir, stratified_indices
from tlearn.errors import DataError


def test_stratified_subset_is_balanced_seeded_and_exclusive():
    labels = torch.arange(10).repeat_interleave(100)
    idx = stratified_indices(labels, 200, seed=3)
    assert idx.numel() == 200 and idx.unique().numel() == 200
    assert torch.bincount(labels[idx], minlength=10).tolist() == [20] * 10
    assert torch.equal(idx, stratified_indices(labels, 200, seed=3))
    assert not torch.equal(idx, stratified_indices(labels, 200, seed=4))
    other = stratified_indices(labels, 300, seed=0, exclude=idx)
    assert not set(other.tolist()) & set(idx.tolist())


def test_stratified_subset_keeps_class_proportions():
    labels = torch.tensor([0] * 70 + [1] * 30)
    idx = stratified_indices(labels, 10, seed=0)
    assert torch.bincount(labels[idx]).tolist() == [7, 3]


def test_too_many_samples():
    with pytest.raises(DataError, match="only 10 are available"):
        stratified_indices(torch.zeros(10, dtype=torch.long), 11, seed=0)


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("TLEARN_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("TLEARN_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_data_dir(None) == tmp_path / "cache" / "tlearn" / "datasets"


def test_reads_generated_idx(tiny_mnist):
    split = load_mnist(tiny_mnist, train=True)
    assert split.images.shape == (300, 1, 28, 28) and split.images.dtype == torch.uint8
    assert split.labels.tolist()[:3] == [0, 1, 2]


def test_real_mnist_layout(mnist_root):
    test = load_mnist(mnist_root, train=False)
    assert len(test) == 10000 and test.images.shape[1:] == (1, 28, 28)
    assert torch.bincount(test.labels).min() > 800


def test_splits_are_disjoint_and_sized(mnist_root):
    cfg = make_config({"data_dir": str(mnist_root), "train_size": 1000, "val_size": 200, "test_size": 500})
    splits = build_splits(cfg)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1000, 200, 500)
    counts = torch.bincount(splits.train.labels)
    assert counts.min() >= 85 and counts.max() <= 120  # MNIST's own class frequencies, scaled


def test_missing_data_offline_says_where(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path / "empty", train=True)
    assert str(tmp_path / "empty" / "MNIST" / "raw") in str(err.value)
    assert "train-images-idx3-ubyte" in str(err.value)


def test_nonexistent_data_dir(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "nowhere", train=True)


def test_truncated_idx_file(tiny_mnist):
    path = tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_mnist(tiny_mnist, train=True)


def test_garbage_idx_file(tiny_mnist):
    (tiny_mnist / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"not an idx file at all")
    with pytest.raises(DataError):
        load_mnist(tiny_mnist, train=False)


def test_more_samples_than_exist(tiny_mnist):
    cfg = make_config({"data_dir": str(tiny_mnist), "train_size": 5000})
    with pytest.raises(DataError, match="more than the 300 training images"):
        build_splits(cfg)
