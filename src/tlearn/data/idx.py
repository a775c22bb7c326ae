"""MNIST, Fashion-MNIST and KMNIST: IDX files in torchvision's layout, held as uint8 tensors.

Images stay uint8 ``[N, 1, 28, 28]`` in memory (47 MB for all 60k); resizing, normalisation and
augmentation happen later on batches (see ``augment.py``), so the upsampled dataset is never
materialised.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..paths import data_root, offline_mode
from .splits import ImageSplit

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# dataset name -> (torchvision class and folder name, class names)
IDX_DATASETS = {
    "mnist": ("MNIST", [str(i) for i in range(10)]),
    "fashion-mnist": (
        "FashionMNIST",
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    ),
    "kmnist": ("KMNIST", ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]),
}


def _missing(raw: Path) -> list[str]:
    return [f for f in MNIST_FILES if not (raw / f).is_file() and not (raw / f"{f}.gz").is_file()]


def _download(root: Path, name: str) -> None:
    from torchvision import datasets as tvd

    title = IDX_DATASETS[name][0]
    raw = root / title / "raw"
    if offline_mode():
        raise DataError(f"{title} not found in {raw} and offline mode is set; put {', '.join(MNIST_FILES)} there")
    try:
        getattr(tvd, title)(str(root), train=True, download=True)
    except Exception as err:  # network errors come in many types (URLError, socket, HTTP)
        raise DataError(
            f"{title} not found in {raw} and downloading failed ({type(err).__name__}); "
            f"put {', '.join(MNIST_FILES)} there or pass --data-dir / set TLEARN_DATA_DIR"
        ) from None


def load_idx(root: Path, train: bool, name: str = "mnist") -> ImageSplit:
    """Read one split of an IDX dataset from ``root/<Name>/raw`` (torchvision layout).

    ``name``: mnist | fashion-mnist | kmnist. Downloads when missing and online.
    """
    from torchvision.datasets.mnist import read_image_file, read_label_file

    if not root.exists() and root != data_root(None):
        raise DataError(f"data directory does not exist: {root} (set --data-dir or TLEARN_DATA_DIR)")
    title, classes = IDX_DATASETS[name]
    raw = root / title / "raw"
    if _missing(raw):
        _download(root, name)
    prefix = "train" if train else "t10k"
    images_path, labels_path = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
    try:
        images = read_image_file(str(images_path))
        labels = read_label_file(str(labels_path))
    except Exception as err:  # torchvision raises assorted errors on truncated/corrupt IDX files
        raise DataError(
            f"cannot read MNIST file in {raw}: corrupt or truncated IDX data ({err}); re-download it"
        ) from None
    if images.ndim != 3 or images.shape[0] != labels.shape[0] or images.shape[0] == 0:
        raise DataError(f"MNIST files in {raw} are inconsistent: {images.shape[0]} images vs {labels.shape[0]} labels")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"MNIST label file in {raw} has labels outside 0-9; re-download it")
    return ImageSplit(images.unsqueeze(1).contiguous(), labels.long(), list(classes))
