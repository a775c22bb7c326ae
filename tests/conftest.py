"""Shared fixtures. Tests never touch the network: offline mode and private caches are forced."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import real_mnist_root, write_tiny_mnist


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """No downloads, and empty private weight caches unless a test fills them."""
    monkeypatch.setenv("TLEARN_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch-home"))
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture
def mnist_root() -> Path:
    root = real_mnist_root()
    if root is None:
        pytest.skip("real MNIST not found: set TLEARN_DATA_DIR")
    return root


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    """A generated dataset in torchvision's MNIST layout: 300 train and 100 test images."""
    return write_tiny_mnist(tmp_path / "data")


@pytest.fixture(scope="session")
def mnist_run(tmp_path_factory):
    """One small model trained on real MNIST (500 images, 4 epochs, 48 px, 1-channel stem), shared by
    the tests of evaluate, predict, export and serve."""
    from tlearn.config import make_config
    from tlearn.training.pipeline import train

    root = real_mnist_root()
    if root is None:
        pytest.skip("real MNIST not found: set TLEARN_DATA_DIR")
    out = tmp_path_factory.mktemp("mnist-run") / "run"
    values = {
        "data_dir": str(root),
        "train_size": 500,
        "test_size": 500,
        "val_source": "none",
        "epochs": 4,
        "image_size": 48,
        "in_chans": 1,
        "lr": 0.003,
        "augment": "digits",
        "progress": False,
        "out": str(out),
    }
    with pytest.MonkeyPatch.context() as patch:  # session fixtures run before the per-test offline switch
        patch.setenv("TLEARN_OFFLINE", "1")
        patch.setenv("HF_HUB_OFFLINE", "1")
        result = train(make_config(values))
    assert result.metrics["test_accuracy"] > 0.8  # chance is 0.1; this model reaches about 0.9
    return result, root


@pytest.fixture(scope="session")
def mnist_timm_folder(mnist_run, tmp_path_factory):
    """The shared MNIST run exported as a timm model folder (tlearn export --format timm)."""
    from tlearn.runs.spec import load_run
    from tlearn.runs.timm_export import export_timm

    folder = tmp_path_factory.mktemp("timm-export") / "mnist-lite0"
    export_timm(load_run(mnist_run[0].run_dir), folder)
    return folder
