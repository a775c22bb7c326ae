"""Dataset sources beyond the IDX reader: torchvision built-ins, class folders and CSV files.

Built-ins with small fixed-size images (MNIST, Fashion-MNIST, KMNIST, CIFAR-10/100, SVHN) are
held as uint8 tensors like MNIST. Folders and CSV files of photos stay files: each image is
decoded when needed and resized ImageNet-style (random resized crop for training, resize +
centre crop for evaluation). Nothing here unpickles arbitrary objects: CIFAR's pickled batches
go through an unpickler that only builds plain containers and NumPy arrays.
"""

from __future__ import annotations

import csv
import hashlib
import io
import pickle
import warnings
from pathlib import Path
from typing import Optional

import torch
from torch.utils.data import Dataset

from .errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# --- CIFAR without pickle's code execution ---------------------------------------------------


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Builds dicts, lists, bytes and NumPy arrays; refuses every other global (no code runs)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}

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


def load_cifar(root: Path, name: str, train: bool):
    """CIFAR-10/100 from torchvision's layout (``cifar-10-batches-py`` / ``cifar-100-python``)."""
    from .data import ImageSplit

    folder = root / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    if not folder.is_dir():
        _download_builtin(root, name)
    if name == "cifar10":
        files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        label_key, meta_file, names_key = "labels", "batches.meta", "label_names"
    else:
        files, label_key, meta_file, names_key = (["train"] if train else ["test"]), "fine_labels", "meta", "fine_label_names"
    data, labels = [], []
    for file in files:
        batch = _load_cifar_batch(folder / file)
        data.append(torch.as_tensor(batch["data"]).reshape(-1, 3, 32, 32))
        labels.extend(batch[label_key])
    meta = _load_cifar_batch(folder / meta_file)
    return ImageSplit(torch.cat(data).contiguous(), torch.tensor(labels, dtype=torch.long), list(meta[names_key]))


def load_svhn(root: Path, train: bool):
    """SVHN from torchvision's layout (``train_32x32.mat`` / ``test_32x32.mat``, needs SciPy)."""
    from .data import ImageSplit

    path = root / ("train_32x32.mat" if train else "test_32x32.mat")
    if not path.is_file():
        _download_builtin(root, "svhn")
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataError("SVHN's .mat files need SciPy: pip install scipy") from None
    mat = loadmat(str(path))
    images = torch.as_tensor(mat["X"]).permute(3, 2, 0, 1).contiguous()
    labels = torch.as_tensor(mat["y"].astype("int64")).flatten() % 10  # SVHN stores digit 0 as label 10
    return ImageSplit(images, labels, [str(i) for i in range(10)])


def _download_builtin(root: Path, name: str) -> None:
    from torchvision import datasets as tvd

    from .data import offline_mode

    if offline_mode():
        raise DataError(f"{name} not found in {root} and offline mode is set; put torchvision's {name} files there")
    factories = {"cifar10": lambda: tvd.CIFAR10(str(root), download=True), "cifar100": lambda: tvd.CIFAR100(str(root), download=True),
                 "svhn": lambda: (tvd.SVHN(str(root), split="train", download=True), tvd.SVHN(str(root), split="test", download=True))}
    try:
        factories[name]()
    except Exception as err:
        raise DataError(f"{name} not found in {root} and downloading failed ({type(err).__name__}); pass --data-dir") from None


# --- folders and CSV files of images ---------------------------------------------------------


def _decodable(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.verify()
        return True
    except Exception:
        return False


def _class_folders(folder: Path) -> dict[str, list[Path]]:
    classes = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        classes[sub.name] = sorted(p for p in sub.rglob("*") if p.is_file())
    return classes


def scan_folder(root: Path) -> dict[str, "FileSplit"]:
    """``root/{train,val,test}/<class>/<image>``; ``train/`` is required, the others optional."""
    if not root.is_dir():
        raise DataError(f"data directory does not exist: {root}")
    if not (root / "train").is_dir():
        raise DataError(f"{root} has no train/ folder; expected {root}/train/<class>/<images> (optional val/, test/)")
    train_classes = _class_folders(root / "train")
    if len(train_classes) < 2:
        raise DataError(f"{root / 'train'} needs at least 2 class folders, found {len(train_classes)}")
    names = list(train_classes)
    splits, skipped = {}, 0
    for split in ("train", "val", "test"):
        if not (root / split).is_dir():
            continue
        folders = train_classes if split == "train" else _class_folders(root / split)
        unknown = sorted(set(folders) - set(names))
        if unknown:
            raise DataError(f"{root / split} has class folder(s) not in train/: {', '.join(unknown)}")
        paths, labels = [], []
        for label, name in enumerate(names):
            for path in folders.get(name, []):
                if path.suffix.lower() in IMAGE_SUFFIXES and _decodable(path):
                    paths.append(path)
                    labels.append(label)
                else:
                    skipped += 1
        splits[split] = FileSplit(paths, torch.tensor(labels, dtype=torch.long), names)
    empty = [n for i, n in enumerate(names) if not (splits["train"].labels == i).any()]
    if empty:
        raise DataError(f"class folder(s) with no usable images in {root / 'train'}: {', '.join(empty)}")
    if skipped:
        warnings.warn(f"skipped {skipped} file(s) that are not decodable images in {root}", stacklevel=2)
    return splits


def read_csv_dataset(path: Path) -> "FileSplit":
    """A CSV with ``path,label`` columns (paths relative to the CSV's folder or absolute)."""
    if not path.is_file():
        raise DataError(f"CSV file not found: {path}")
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read CSV {path}: {err}") from None
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise DataError(f"{path} needs a header with 'path' and 'label' columns")
    names = sorted({r["label"] for r in rows if r.get("label")})
    if len(names) < 2:
        raise DataError(f"{path} needs at least 2 distinct labels, found {len(names)}")
    paths, labels, skipped = [], [], 0
    for row in rows:
        file = Path(row["path"] or "")
        file = file if file.is_absolute() else path.parent / file
        if row.get("label") and file.is_file() and _decodable(file):
            paths.append(file)
            labels.append(names.index(row["label"]))
        else:
            skipped += 1
    if skipped:
        warnings.warn(f"skipped {skipped} row(s) of {path} whose file is missing or not a decodable image", stacklevel=2)
    if not paths:
        raise DataError(f"no usable images listed in {path}")
    return FileSplit(paths, torch.tensor(labels, dtype=torch.long), names)


class FileSplit:
    """A split of image files, decoded on demand; shares ImageSplit's interface."""

    channels = 3

    def __init__(self, paths: list[Path], labels: torch.Tensor, classes: list[str]):
        self.paths = list(paths)
        self.labels = labels
        self.classes = classes
        self.image_size = 224
        self.crop_pct = 0.875

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: torch.Tensor) -> "FileSplit":
        out = FileSplit([self.paths[i] for i in indices.tolist()], self.labels[indices], self.classes)
        out.image_size, out.crop_pct = self.image_size, self.crop_pct
        return out

    def configure(self, image_size: int, crop_pct: float) -> None:
        self.image_size, self.crop_pct = image_size, crop_pct

    def read(self, index: int) -> torch.Tensor:
        from .inference import read_image

        return read_image(self.paths[index], 3)

    def item(self, index: int) -> torch.Tensor:
        """Evaluation view: resize the short side to size/crop_pct, then centre-crop."""
        from torchvision.transforms import v2

        size = self.image_size
        resize = v2.Compose([v2.Resize(int(round(size / self.crop_pct)), antialias=True), v2.CenterCrop(size)])
        return resize(self.read(index))

    def batches(self, batch_size: int):
        for start in range(0, len(self), batch_size):
            yield torch.stack([self.item(i) for i in range(start, min(start + batch_size, len(self)))])

    def fingerprint(self) -> bytes:
        digest = hashlib.blake2b(digest_size=20)
        digest.update(repr((self.image_size, self.crop_pct)).encode())
        for path in self.paths:
            stat = path.stat()
            digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        return digest.digest()

    def dataset(self, train: bool, extra=None) -> Dataset:
        return _FileDataset(self, train, extra)


class _FileDataset(Dataset):
    def __init__(self, split: FileSplit, train: bool, extra=None):
        from torchvision.transforms import v2

        self.split = split
        self.train = train
        self.random_crop = v2.Compose([v2.RandomResizedCrop(split.image_size, scale=(0.35, 1.0), antialias=True), v2.RandomHorizontalFlip()])
        self.extra = extra

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        image = self.random_crop(self.split.read(index)) if self.train else self.split.item(index)
        if self.extra is not None:
            image = self.extra(image)
        return image, self.split.labels[index]
