"""MNIST-style IDX datasets: reading, class names, and every way the files can be wrong."""

import pytest
import torch

from tests.helpers import synthetic_digits, write_idx_images, write_idx_labels
from tlearn.data.idx import load_idx
from tlearn.errors import DataError


def test_reads_generated_idx(tiny_mnist):
    split = load_idx(tiny_mnist, train=True)
    assert split.images.shape == (300, 1, 28, 28) and split.images.dtype == torch.uint8
    assert split.labels.tolist()[:3] == [0, 1, 2]


def test_real_mnist_layout(mnist_root):
    test = load_idx(mnist_root, train=False)
    assert len(test) == 10000 and test.images.shape[1:] == (1, 28, 28)
    assert torch.bincount(test.labels).min() > 800


@pytest.mark.parametrize("name, folder", [("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")])
def test_other_idx_datasets_have_their_class_names(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 50), ("t10k", 20)):
        images, labels = synthetic_digits(n)
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
    split = load_idx(tmp_path, True, name)
    assert len(split.classes) == 10 and split.classes[0] != "0"


def test_missing_data_offline_says_where(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        load_idx(tmp_path / "empty", train=True)
    assert str(tmp_path / "empty" / "MNIST" / "raw") in str(err.value)
    assert "train-images-idx3-ubyte" in str(err.value)


def test_nonexistent_data_dir(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_idx(tmp_path / "nowhere", train=True)


def test_truncated_idx_file(tiny_mnist):
    path = tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_idx(tiny_mnist, train=True)


def test_garbage_idx_file(tiny_mnist):
    (tiny_mnist / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"not an idx file at all")
    with pytest.raises(DataError):
        load_idx(tiny_mnist, train=False)
