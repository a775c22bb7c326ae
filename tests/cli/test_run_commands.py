"""evaluate, predict and export on runs trained from a folder of photos."""

import json
import subprocess
import sys

import pytest

from tests.helpers import CLASSES, make_folder
from tlearn.config import make_config
from tlearn.data.images import read_image
from tlearn.inference import evaluate_run, predict_images
from tlearn.runs.export import export_onnx
from tlearn.runs.spec import load_run
from tlearn.training.pipeline import train


def test_commands_work_on_a_folder_trained_run(tmp_path):
    """evaluate, predict and export on a run trained from a generated folder dataset."""
    make_folder(tmp_path / "data", counts={"train": 16, "test": 6}, bad_files=0)
    cfg = make_config(
        {
            "dataset": "folder",
            "data_dir": str(tmp_path / "data"),
            "train_size": None,
            "val_source": "none",
            "backbone": "resnet18",
            "weights": "none",
            "image_size": 32,
            "epochs": 2,
            "batch_size": 16,
            "progress": False,
            "out": str(tmp_path / "run"),
        }
    )
    result = train(cfg)
    run = load_run(result.run_dir)
    assert run.classes == CLASSES and run.preprocessing.crop_pct == pytest.approx(0.875)
    again = evaluate_run(run)
    assert again["samples"] == 18 and again["accuracy"] == pytest.approx(result.metrics["test_accuracy"])
    files = sorted((tmp_path / "data" / "test").rglob("*.png"))
    probabilities = predict_images(run, [read_image(p, 3) for p in files])
    assert probabilities.shape == (len(files), 3)
    info = export_onnx(run, tmp_path / "m.onnx")
    assert info["max_abs_diff"] < 1e-3 and json.loads(info["metadata"]["class_names"]) == CLASSES
    args = [sys.executable, "-m", "tlearn.cli", "predict", str(result.run_dir), str(tmp_path / "data" / "test")]
    cli = subprocess.run(args, capture_output=True, text=True)
    assert cli.returncode == 0 and "circle" in cli.stdout
