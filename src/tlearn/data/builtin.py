"""CIFAR-10/100 and SVHN in torchvision's layout, held as uint8 tensors like MNIST.

Nothing here unpickles arbitrary objects: CIFAR's pickled batches go through an unpickler that
only builds plain containers and NumPy arrays. SVHN's ``.mat`` files are read by torchvision's
own ``SVHN`` dataset (which verifies their checksums; it needs SciPy).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from ..errors import DataError, one_line
from ..paths import offline_mode
from .splits import ImageSplit


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Builds dicts, lists, bytes and NumPy arrays; refuses every other global (no code runs)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _load_cifar_batch(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return _ArraysOnlyUnpickler(handle, encoding="latin1").load()
    except Exception as err:
        raise DataError(f"cannot read CIFAR batch {path}: {err}") from None


def load_cifar(root: Path, name: str, train: bool) -> ImageSplit:
    """CIFAR-10/100 from torchvision's layout (``cifar-10-batches-py`` / ``cifar-100-python``)."""
    folder = root / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    if not folder.is_dir():
        _download(root, name)
    if name == "cifar10":
        files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        label_key, meta_file, names_key = "labels", "batches.meta", "label_names"
    else:
        files = ["train"] if train else ["test"]
        label_key, meta_file, names_key = "fine_labels", "meta", "fine_label_names"
    data, labels = [], []
    for file in files:
        batch = _load_cifar_batch(folder / file)
        data.append(torch.as_tensor(batch["data"]).reshape(-1, 3, 32, 32))
        labels.extend(batch[label_key])
    meta = _load_cifar_batch(folder / meta_file)
    return ImageSplit(torch.cat(data).contiguous(), torch.tensor(labels, dtype=torch.long), list(meta[names_key]))


def load_svhn(root: Path, train: bool) -> ImageSplit:
    """SVHN from torchvision's layout (``train_32x32.mat`` / ``test_32x32.mat``)."""
    split = "train" if train else "test"
    if not (root / f"{split}_32x32.mat").is_file():
        _download(root, "svhn")
    try:
        from torchvision.datasets import SVHN

        dataset = SVHN(str(root), split=split)
    except ImportError:
        raise DataError("SVHN's .mat files need SciPy: pip install scipy") from None
    except Exception as err:  # a corrupt or truncated .mat file fails its checksum or its reader
        raise DataError(f"cannot read SVHN {split} data in {root}: {one_line(err)}") from None
    images = torch.as_tensor(dataset.data).contiguous()  # already [N, 3, 32, 32] uint8
    labels = torch.as_tensor(dataset.labels).long()  # torchvision maps SVHN's label 10 to digit 0
    return ImageSplit(images, labels, [str(i) for i in range(10)])


def _download(root: Path, name: str) -> None:
    from torchvision import datasets as tvd

    if offline_mode():
        raise DataError(f"{name} not found in {root} and offline mode is set; put torchvision's {name} files there")
    factories = {
        "cifar10": lambda: tvd.CIFAR10(str(root), download=True),
        "cifar100": lambda: tvd.CIFAR100(str(root), download=True),
        "svhn": lambda: [tvd.SVHN(str(root), split=s, download=True) for s in ("train", "test")],
    }
    try:
        factories[name]()
    except Exception as err:
        raise DataError(
            f"{name} not found in {root} and downloading failed ({type(err).__name__}); pass --data-dir"
        ) from None
