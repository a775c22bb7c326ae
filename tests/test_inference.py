"""Using a trained run: predict on image files, re-evaluate, export to ONNX/TorchScript."""

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from tlearn.config import make_config
from tlearn.data import load_mnist
from tlearn.errors import DataError, TlearnError
from tlearn.export import export_onnx, export_torchscript
from tlearn.inference import evaluate_run, load_run, predict_images, read_image, top_k
from tlearn.train import train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from conftest import real_mnist_root

    root = real_mnist_root()
    if root is None:
        pytest.skip("real MNIST not found: set TLEARN_DATA_DIR")
    out = tmp_path_factory.mktemp("run") / "run"
    cfg = make_config({"data_dir": str(root), "train_size": 500, "test_size": 500, "val_source": "none", "epochs": 4,
                       "image_size": 48, "in_chans": 1, "lr": 0.003, "augment": "digits", "progress": False, "out": str(out)})
    result = train(cfg)
    assert result.metrics["test_accuracy"] > 0.8
    return result, root


def _digit_files(root: Path, folder: Path, n: int = 24) -> list[tuple[Path, int]]:
    """MNIST test digits saved as PNG/JPEG/BMP in L/RGB/RGBA at several sizes."""
    test = load_mnist(root, train=False)
    variants = [("L", "png", 28), ("RGB", "jpg", 64), ("RGBA", "png", 100), ("L", "bmp", 40), ("RGB", "bmp", 20), ("RGBA", "png", 56)]
    files = []
    for i in range(n):
        mode, fmt, size = variants[i % len(variants)]
        path = folder / f"digit{i}.{fmt}"
        Image.fromarray(test.images[i, 0].numpy()).convert(mode).resize((size, size), Image.BILINEAR).save(path)
        files.append((path, int(test.labels[i])))
    return files


def test_predict_is_right_on_digit_files_of_every_format(trained_run, tmp_path):
    result, root = trained_run
    files = _digit_files(root, tmp_path)
    run = load_run(result.run_dir)
    images = [read_image(p, run.data_channels) for p, _ in files]
    assert {tuple(img.shape[1:]) for img in images} >= {(28, 28), (64, 64), (100, 100)}
    probabilities = predict_images(run, images)
    assert torch.allclose(probabilities.sum(1), torch.ones(len(files)), atol=1e-5)
    predicted = [row[0][0] for row in top_k(probabilities, run.classes, 3)]
    correct = sum(p == str(label) for p, (_, label) in zip(predicted, files))
    assert correct >= len(files) - 2, (predicted, [label for _, label in files])


def test_predict_cli_writes_csv_and_skips_bad_files(trained_run, tmp_path):
    result, root = trained_run
    files = _digit_files(root, tmp_path, 6)
    (tmp_path / "notes.png").write_bytes(b"this is not an image")
    out = tmp_path / "pred.csv"
    proc = subprocess.run([sys.executable, "-m", "tlearn.cli", "predict", str(result.run_dir), str(tmp_path), "--top-k", "2",
                           "--output", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "skipped 1 file(s)" in proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and set(rows[0]) == {"path", "label", "probability", "top_k"}
    assert all(0.0 <= float(r["probability"]) <= 1.0 for r in rows)


def test_unreadable_single_image_is_an_error(tmp_path):
    (tmp_path / "x.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read image"):
        read_image(tmp_path / "x.png", 1)


def test_evaluate_matches_the_training_figure(trained_run):
    result, root = trained_run
    metrics = evaluate_run(load_run(result.run_dir), str(root), test_size=500)
    assert metrics["samples"] == 500
    assert metrics["accuracy"] == pytest.approx(result.metrics["test_accuracy"], abs=1e-9)


def test_onnx_alone_reproduces_the_test_accuracy(trained_run, tmp_path):
    result, root = trained_run
    info = export_onnx(load_run(result.run_dir), tmp_path / "model.onnx")
    assert info["max_abs_diff"] < 1e-3 and info["opset"] >= 17
    spec = importlib.util.spec_from_file_location("onnx_classify", REPO / "examples" / "onnx_classify.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    session, meta = example.load(str(tmp_path / "model.onnx"))
    assert set(meta) >= {"class_names", "image_size", "mean", "std"}
    assert session.get_inputs()[0].shape[0] == "batch"  # dynamic batch
    from tlearn.data import stratified_indices

    test = load_mnist(root, train=False)
    idx = stratified_indices(test.labels, 500, seed=0)  # the run's own test subset (seed 0)
    images = [Image.fromarray(test.images[i, 0].numpy()) for i in idx.tolist()]
    predicted = example.classify(session, meta, images)
    accuracy = sum(p == str(int(test.labels[i])) for p, i in zip(predicted, idx.tolist())) / len(idx)
    assert abs(accuracy - result.metrics["test_accuracy"]) <= 0.01


def test_torchscript_export(trained_run, tmp_path):
    result, _ = trained_run
    info = export_torchscript(load_run(result.run_dir), tmp_path / "model.pt")
    assert info["max_abs_diff"] < 1e-3 and (tmp_path / "model.pt").is_file()


def test_export_to_unwritable_place_is_a_clear_error(trained_run, tmp_path):
    result, _ = trained_run
    with pytest.raises(TlearnError, match="does not exist"):
        export_onnx(load_run(result.run_dir), tmp_path / "missing-folder" / "m.onnx")
    with pytest.raises(TlearnError, match="is a directory"):
        export_onnx(load_run(result.run_dir), tmp_path)


def test_not_a_run_dir(tmp_path):
    with pytest.raises(TlearnError, match="not a finished tlearn run"):
        load_run(tmp_path)


def test_test_time_augmentation_in_evaluate_and_predict(trained_run, tmp_path):
    result, root = trained_run
    run = load_run(result.run_dir)
    single = evaluate_run(run, test_size=300)
    averaged = evaluate_run(run, test_size=300, tta=5)
    assert averaged["samples"] == 300 and averaged["accuracy"] > 0.8
    assert averaged["loss"] != single["loss"]  # the views were really averaged
    files = _digit_files(root, tmp_path, 6)
    images = [read_image(path, run.data_channels) for path, _ in files]
    probabilities = predict_images(run, images, tta=5)
    assert probabilities.shape == (6, 10) and torch.allclose(probabilities.sum(1), torch.ones(6), atol=1e-5)
    out = subprocess.run([sys.executable, "-m", "tlearn", "evaluate", str(result.run_dir), "--test-size", "200", "--tta", "3"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "3 test-time views" in out.stdout
