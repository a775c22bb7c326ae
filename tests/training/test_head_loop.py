"""The head loop on cached features: the same run as Lightning's, which runs everything else."""

import csv
import json
import subprocess
import sys

import pytest

import tlearn.training.fitting as fitting
import tlearn.training.head_loop as head_loop
from tests.helpers import tiny_run_config
from tlearn.errors import TrainingInterrupted
from tlearn.training.feed import CacheReport, Feed
from tlearn.training.head_loop import lightning_needed
from tlearn.training.pipeline import resume, train


def _config(tiny_mnist, out, **extra):
    options = {"epochs": 4, "batch_size": 16, "freeze": "backbone", "augment": "none"}
    return tiny_run_config(tiny_mnist, out, **{**options, **extra})


def _rows(run_dir):
    return list(csv.DictReader((run_dir / "metrics.csv").open()))


@pytest.mark.parametrize("extra", [{}, {"class_weights": "auto", "label_smoothing": 0.1, "optimizer": "sgd"}])
def test_the_head_loop_trains_what_lightning_trains(tiny_mnist, tmp_path, monkeypatch, extra):
    loop = train(_config(tiny_mnist, tmp_path / "loop", **extra))
    assert loop.metrics["trainer"] == "head loop" and loop.metrics["feature_cache"]["used"] is True

    monkeypatch.setattr(fitting, "lightning_needed", lambda *args: "forced for the comparison")
    lightning = train(_config(tiny_mnist, tmp_path / "lightning", **extra))
    assert lightning.metrics["trainer"] == "lightning"

    ours, theirs = loop.metrics, lightning.metrics
    for mine, reference in zip(ours["history"], theirs["history"], strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert mine[key] == pytest.approx(reference[key], rel=1e-5, abs=1e-6), key
    assert ours["model_epoch"] == theirs["model_epoch"] and ours["keep"] == theirs["keep"] == "best"
    assert ours["test_accuracy"] == theirs["test_accuracy"]
    assert ours["test_loss"] == pytest.approx(theirs["test_loss"], rel=1e-5)
    # metrics.csv: the same columns and epochs as Lightning's CSV logger writes
    mine_csv, their_csv = _rows(loop.run_dir), _rows(lightning.run_dir)
    assert list(mine_csv[0]) == list(their_csv[0])
    assert [r["epoch"] for r in mine_csv] == [r["epoch"] for r in their_csv] == ["1", "2", "3", "4"]
    assert not (loop.run_dir / "checkpoints").exists()


def test_what_the_head_loop_leaves_to_lightning(tiny_mnist, tmp_path):
    base = _config(tiny_mnist, tmp_path / "x")
    cached = Feed(None, None, None, None, None, CacheReport(used=True, reason="", boundary="backbone"))
    assert lightning_needed(base, cached, None) is None
    partial = Feed(None, None, None, None, None, CacheReport(used=True, reason="", boundary="layer3"))
    assert lightning_needed(base, partial, None) == "layers of the backbone train"
    assert "resumes" in lightning_needed(base, cached, tmp_path / "last.ckpt")
    assert "time budget" in lightning_needed(base, cached, None, [object()])
    for option, value, flag in (
        ("ema", 0.99, "--ema"),
        ("early_stopping", 2, "--early-stopping"),
        ("grad_clip", 1.0, "--grad-clip"),
        ("accumulate", 2, "--accumulate"),
        ("precision", "bf16-mixed", "--precision"),
        ("loggers", ["csv", "tensorboard"], "--logger"),
        ("devices", 2, "several processes"),
    ):
        assert flag in lightning_needed(base.with_changes(**{option: value}), cached, None), option


def test_ctrl_c_in_the_head_loop_keeps_the_rows_and_resume_starts_it_again(tiny_mnist, tmp_path, monkeypatch):
    whole = train(_config(tiny_mnist, tmp_path / "whole")).metrics
    calls = []
    validate = head_loop._validate

    def interrupted_in_epoch_3(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return validate(*args)

    with monkeypatch.context() as patch:
        patch.setattr(head_loop, "_validate", interrupted_in_epoch_3)
        with pytest.raises(TrainingInterrupted, match="resume with: tlearn train --resume .*cached features"):
            train(_config(tiny_mnist, tmp_path / "cut"))
    state = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert state == {"complete": False, "interrupted": True, "epochs_done": 2, "resumable": False}
    assert [r["epoch"] for r in _rows(tmp_path / "cut")] == ["1", "2"]

    again = resume(tmp_path / "cut").metrics  # no checkpoint: the run starts again in its directory
    assert again["complete"] is True and [r["epoch"] for r in _rows(tmp_path / "cut")] == ["1", "2", "3", "4"]
    assert again["test_accuracy"] == whole["test_accuracy"]
    assert [r["val_loss"] for r in again["history"]] == [r["val_loss"] for r in whole["history"]]


def test_the_best_epoch_is_chosen_as_lightning_chooses_it():
    from torch import nn

    from tlearn.training.head_loop import BestEpoch

    best = BestEpoch(nn.Linear(2, 2))
    best.offer({"epoch": 1, "val_loss": float("nan")})  # the first epoch counts even with a NaN loss
    assert best.epoch == 1
    best.offer({"epoch": 2, "val_loss": 0.5})
    best.offer({"epoch": 3, "val_loss": 0.5})  # equal is not better
    best.offer({"epoch": 4, "val_loss": float("nan")})
    assert best.epoch == 2


def test_a_head_loop_run_never_imports_lightning(tiny_mnist, tmp_path):
    """Lightning's import (with torchmetrics) is 0.6 s of a cached run that does not need it."""
    config = _config(tiny_mnist, tmp_path / "run").model_dump(mode="json")
    script = (
        "import json, sys\n"
        "from tlearn.config import make_config\n"
        "from tlearn.training.pipeline import train\n"
        f"result = train(make_config(json.loads({json.dumps(json.dumps(config))})))\n"
        "print(result.metrics['trainer'], 'lightning' in sys.modules, 'torchmetrics' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "head loop False False"


def test_a_nan_loss_in_the_head_loop_names_epoch_and_step(tiny_mnist, tmp_path, monkeypatch):
    import tlearn.training.objective as objective
    from tlearn.errors import NonFiniteLossError

    real, calls = objective.F.cross_entropy, []

    def poisoned(logits, labels, **kwargs):
        calls.append(1)  # epoch 1: 8 training steps (120 images, batch 16) + 1 validation batch
        return real(logits, labels, **kwargs) * (float("nan") if len(calls) == 11 else 1.0)

    monkeypatch.setattr(objective.F, "cross_entropy", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"at epoch 2, step 2;.*cached features are kept"):
        train(_config(tiny_mnist, tmp_path / "run"))
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["complete"] is False
