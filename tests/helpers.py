"""Builders of test data: generated MNIST-style IDX files, photo folders, the real MNIST location."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _shared_datasets_with(marker: str, present=Path.is_file) -> Path | None:
    """The datasets folder (``$TLEARN_DATA_DIR``, else ``../shared/datasets``) where ``present(marker)``."""
    candidates = [os.environ.get("TLEARN_DATA_DIR"), str(REPO.parent / "shared" / "datasets")]
    for c in candidates:
        if c and present(Path(c) / marker):
            return Path(c)
    return None


def real_mnist_root() -> Path | None:
    """The real MNIST (``$TLEARN_DATA_DIR`` or ``../shared/datasets``), or None if absent."""
    return _shared_datasets_with("MNIST/raw/t10k-images-idx3-ubyte")


def real_flowers_root() -> Path | None:
    """The flowers12 photos (``$TLEARN_DATA_DIR/flowers12`` or ``../shared/datasets/flowers12``), or None."""
    root = _shared_datasets_with("flowers12/test/daisy", Path.is_dir)
    return root / "flowers12" if root else None


def write_idx_images(path: Path, images: np.ndarray) -> None:
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 0x803, n, h, w) + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    path.write_bytes(struct.pack(">II", 0x801, labels.shape[0]) + labels.astype(np.uint8).tobytes())


def synthetic_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tiny learnable 28×28 images: class k is a bright bar at a class-specific position, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, size=(n, 28, 28))
    for i, k in enumerate(labels):
        row = 2 + (k % 5) * 5
        col = 2 if k < 5 else 16
        images[i, row : row + 4, col : col + 10] = 255
    return images.astype(np.uint8), labels


def write_tiny_mnist(root: Path, train: int = 300, test: int = 100) -> Path:
    """A generated dataset in torchvision's MNIST layout below ``root``; returns ``root``."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n, seed in (("train", train, 0), ("t10k", test, 1)):
        images, labels = synthetic_digits(n, seed)
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


CLASSES = ["circle", "square", "stripe"]


def photo(kind: int, rng, size: int):
    """A small colour picture whose class is its pattern (learnable from a few examples)."""
    from PIL import Image

    img = rng.integers(0, 60, size=(size, size, 3)).astype(np.uint8)
    if kind == 0:
        yy, xx = np.mgrid[:size, :size]
        img[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2] = (230, 40, 40)
    elif kind == 1:
        img[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (40, 230, 40)
    else:
        img[:, ::6] = (40, 40, 230)
    return Image.fromarray(img)


def make_folder(root: Path, counts=None, bad_files: int = 1, classes=CLASSES, size: int = 40) -> Path:
    """``root/<split>/<class>/<i>.{png,jpg,bmp}`` pictures of the three pattern classes (``size`` to
    ``size`` + 16 px: small images by default, photos from 80 px on), plus broken files."""
    counts = counts or {"train": 12, "val": 4, "test": 4}
    rng = np.random.default_rng(0)
    for split, n in counts.items():
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                fmt = ["png", "jpg", "bmp"][i % 3]
                photo(k % 3, rng, size + 8 * (i % 3)).save(folder / f"{i}.{fmt}")
    for i in range(bad_files):
        (root / "train" / classes[0] / f"broken{i}.png").write_bytes(b"not an image")
    return root


def preprocessing(image_size=32, in_chans=3, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), data_channels=1, crop_pct=None):
    """A Preprocessing for tests (1-channel models get an averaged statistic, as the resolver gives them)."""
    from tlearn.data.preprocessing import Preprocessing

    if in_chans == 1 and len(mean) == 3:
        mean, std = (sum(mean) / 3,), (sum(std) / 3,)
    return Preprocessing(image_size, in_chans, tuple(mean), tuple(std), data_channels, crop_pct)


def write_odd_images(folder: Path, rng=None) -> dict[str, Path]:
    """One file of each kind a photo folder may hold: the four that decode (CMYK JPEG, 16-bit PNG,
    EXIF-rotated JPEG, animated GIF) and the two that must be skipped (truncated JPEG, text as .jpg)."""
    from PIL import Image

    rng = rng or np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    photo(0, rng, 48).convert("CMYK").save(files.setdefault("cmyk", folder / "cmyk.jpg"))
    deep = (np.arange(48 * 48, dtype=np.uint16).reshape(48, 48) * 28).astype(np.uint16)  # up to 64,484
    Image.fromarray(deep).save(files.setdefault("png16", folder / "deep.png"))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    photo(1, rng, 40).crop((0, 0, 40, 24)).save(files.setdefault("exif", folder / "rotated.jpg"), exif=exif)
    frames = [photo(k, rng, 40).convert("P") for k in range(3)]
    frames[0].save(files.setdefault("gif", folder / "animated.gif"), save_all=True, append_images=frames[1:])
    whole = folder / "whole.jpg"
    photo(2, rng, 64).save(whole, quality=95)
    files.setdefault("truncated", folder / "truncated.jpg").write_bytes(whole.read_bytes()[:600])
    whole.unlink()
    files.setdefault("text", folder / "notes.jpg").write_text("not an image")
    return files


def tiny_run_config(data: Path, out: Path, **options):
    """A quick run on :func:`write_tiny_mnist` data: resnet18 from random weights at 32 px,
    120 training / 40 validation / 60 test images, no progress bar; ``options`` set the rest."""
    from tlearn.config import make_config

    base = {"train_size": 120, "test_size": 60, "val_size": 40, "image_size": 32, "backbone": "resnet18"}
    return make_config(
        {"data_dir": str(data), **base, "weights": "none", "progress": False, "out": str(out), **options}
    )
