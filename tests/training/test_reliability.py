"""Nothing lost: non-finite losses stop cleanly, interrupted runs are recognisable, kill -9 resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import tlearn.training.objective as objective
from tlearn.config import make_config
from tlearn.errors import NonFiniteLossError
from tlearn.training.pipeline import train


def test_nan_loss_names_epoch_and_step_and_keeps_the_last_checkpoint(tiny_mnist, tmp_path, monkeypatch):
    real = objective.F.cross_entropy
    calls = {"n": 0}

    def poisoned(logits, labels, **kwargs):
        calls["n"] += 1
        loss = real(logits, labels, **kwargs)
        return (
            loss * float("nan") if calls["n"] == 8 else loss
        )  # epoch 1 = 4 training + 2 validation calls; 8 = epoch 2, step 2

    monkeypatch.setattr(objective.F, "cross_entropy", poisoned)
    cfg = make_config(
        {
            "data_dir": str(tiny_mnist),
            "train_size": 100,
            "test_size": 20,
            "val_size": 50,
            "epochs": 3,
            "image_size": 32,
            "batch_size": 32,
            "backbone": "resnet18",
            "weights": "none",
            "progress": False,
            "out": str(tmp_path / "run"),
        }
    )
    with pytest.raises(NonFiniteLossError, match=r"at epoch 2, step 2"):
        train(cfg)
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    state = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert state["complete"] is False
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 0  # the last good epoch


@pytest.mark.slow
def test_kill_9_then_resume_matches_an_uninterrupted_run(mnist_root, tmp_path):
    args = [
        sys.executable,
        "-m",
        "tlearn.cli",
        "train",
        "--no-progress",
        "--data-dir",
        str(mnist_root),
        "--train-size",
        "500",
        "--test-size",
        "2000",
        "--epochs",
        "6",
        "--image-size",
        "48",
        "--in-chans",
        "1",
        "--augment",
        "digits",
        "--seed",
        "3",
    ]
    whole = subprocess.run([*args, "--out", str(tmp_path / "whole")], capture_output=True, text=True, check=True)
    assert whole.returncode == 0
    victim = subprocess.Popen(
        [*args, "--out", str(tmp_path / "cut")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoint = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 600
    while time.time() < deadline and not (
        checkpoint.is_file() and len((tmp_path / "cut" / "metrics.csv").read_text().splitlines()) >= 3
    ):
        time.sleep(0.2)
    os.kill(victim.pid, signal.SIGKILL)  # in the middle of epoch 3
    victim.wait()
    assert json.loads((tmp_path / "cut" / "metrics.json").read_text())["complete"] is False
    resumed = subprocess.run(
        [sys.executable, "-m", "tlearn.cli", "train", "--resume", str(tmp_path / "cut"), "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    b = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert b["complete"] and b["resumed"]
    assert abs(a["test_accuracy"] - b["test_accuracy"]) <= 0.002
