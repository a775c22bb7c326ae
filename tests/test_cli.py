"""The CLI as a user meets it: help, presets, one-line errors with exit code 2, a dry run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def tlearn(*args, env=None, cwd=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "tlearn.cli", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=600)


def test_help_is_light():
    code = "import sys, tlearn.cli; print(any(m in sys.modules for m in ('torch', 'lightning', 'timm')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    result = tlearn("train", "--help")
    assert result.returncode == 0 and "--preset" in result.stdout and "--freeze" in result.stdout


def test_presets_lists_each_preset():
    result = tlearn("presets")
    assert result.returncode == 0
    for name in ("default", "seed000-vgg16", "seed002-resnet50"):
        assert name in result.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "--lr", "abc"], "Invalid value for '--lr'"),
        (["train", "--lr", "-1"], "invalid value for --lr"),
        (["train", "--lr", "nan"], "invalid value for --lr"),
        (["train", "--epochs", "0"], "invalid value for --epochs"),
        (["train", "--bogus"], "No such option: --bogus"),
        (["nope"], "No such command 'nope'"),
        (["train", "--preset", "nope"], "unknown preset 'nope'"),
        (["train", "--backbone", "resnet5000"], "unknown backbone 'resnet5000'"),
        (["train", "--freeze", "until:layer99", "--backbone", "resnet18", "--weights", "none"], "unknown stage 'layer99'"),
        (["train", "--config", "/no/such/file.yaml"], "config file not found"),
        (["train", "--weights", "/no/such/weights.safetensors"], "weights file not found"),
        (["train", "--device", "cuda"], "no CUDA GPU is available"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, fragment, tiny_mnist):
    if fragment == "no CUDA GPU is available":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    result = tlearn(*args, "--data-dir", str(tiny_mnist), "--dry-run") if args[0] == "train" else tlearn(*args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert fragment in lines[0]


def test_missing_dataset_says_where_to_put_it(tmp_path):
    (tmp_path / "empty").mkdir()
    result = tlearn("train", "--data-dir", str(tmp_path / "empty"))
    assert result.returncode == 2
    assert str(tmp_path / "empty" / "MNIST" / "raw") in result.stderr and "Traceback" not in result.stderr


def test_bad_yaml_key_is_named(tmp_path, tiny_mnist):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 2\nlearnin_rate: 0.1\n")
    result = tlearn("train", "--config", str(cfg), "--data-dir", str(tiny_mnist))
    assert result.returncode == 2 and "unknown option 'learnin_rate'" in result.stderr


def test_dry_run_end_to_end(tiny_mnist, tmp_path):
    out = tmp_path / "run"
    result = tlearn("train", "--dry-run", "--data-dir", str(tiny_mnist), "--image-size", "32", "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "Test accuracy" in result.stdout and "on 64 test images" in result.stdout and str(out) in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["complete"] and metrics["train_samples"] == 64


def test_data_dir_from_environment(tiny_mnist, tmp_path):
    out = tmp_path / "run"
    result = tlearn("train", "--dry-run", "--image-size", "32", "--out", str(out), "--no-progress", env={"TLEARN_DATA_DIR": str(tiny_mnist)})
    assert result.returncode == 0, result.stderr
