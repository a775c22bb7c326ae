"""Shared fixtures. Tests never touch the network: offline mode and private caches are forced."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """No downloads, and empty private weight caches unless a test fills them."""
    monkeypatch.setenv("TLEARN_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch-home"))
    monkeypatch.setenv("MPLBACKEND", "Agg")


def real_mnist_root() -> Path | None:
    """The real MNIST (``$TLEARN_DATA_DIR`` or ``../shared/datasets``), or None if absent."""
    candidates = [os.environ.get("TLEARN_DATA_DIR"), str(REPO.parent / "shared" / "datasets")]
    for c in candidates:
        if c and (Path(c) / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
            return Path(c)
    return None


@pytest.fixture
def mnist_root() -> Path:
    root = real_mnist_root()
    if root is None:
        pytest.skip("real MNIST not found: set TLEARN_DATA_DIR")
    return root


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


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    """A generated dataset in torchvision's MNIST layout: 300 train and 100 test images."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n, seed in (("train", 300, 0), ("t10k", 100, 1)):
        images, labels = synthetic_digits(n, seed)
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return tmp_path / "data"
