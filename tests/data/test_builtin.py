"""CIFAR (read without running pickled code) and SVHN (torchvision's reader)."""

import pickle
import sys

import numpy as np
import pytest
from torchvision.datasets import SVHN

from tlearn.data.builtin import load_cifar, load_svhn
from tlearn.errors import DataError


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


def test_svhn_mat_files(tmp_path, monkeypatch):
    scipy_io = pytest.importorskip("scipy.io")
    # torchvision checks the official files' MD5 sums; these generated ones only need to exist.
    monkeypatch.setattr(SVHN, "_check_integrity", lambda self: (tmp_path / self.filename).is_file())

    for name, n in (("train_32x32.mat", 20), ("test_32x32.mat", 10)):
        x = np.random.default_rng(0).integers(0, 255, size=(32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(-1, 1)  # SVHN stores digit 0 as 10
        scipy_io.savemat(tmp_path / name, {"X": x, "y": y})
    split = load_svhn(tmp_path, train=True)
    assert split.images.shape == (20, 3, 32, 32) and split.labels.tolist()[:10] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]


def test_svhn_without_scipy_is_one_line_naming_it(tmp_path, monkeypatch):
    """SciPy is not a dependency (it costs a second of start-up on every run): SVHN asks for it."""
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    monkeypatch.setattr(SVHN, "_check_integrity", lambda self: True)
    (tmp_path / "train_32x32.mat").write_bytes(b"")
    with pytest.raises(DataError, match="need SciPy: pip install scipy"):
        load_svhn(tmp_path, train=True)


def test_svhn_file_that_fails_its_checksum_is_a_data_error(tmp_path):
    (tmp_path / "train_32x32.mat").write_bytes(b"not the official file")
    with pytest.raises(DataError, match="cannot read SVHN train data"):
        load_svhn(tmp_path, train=True)
