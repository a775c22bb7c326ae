"""Interrupting and resuming a run: Ctrl-C leaves a resumable run, --resume finishes it identically."""

import csv
import json
from contextlib import contextmanager

import lightning.pytorch as pl
import pytest

import tlearn.training.fitting as fitting
from tests.helpers import tiny_run_config
from tlearn.errors import TlearnError, TrainingInterrupted
from tlearn.training.pipeline import resume, train


class InterruptAt(pl.Callback):
    """Simulates Ctrl-C at the start of a given epoch (0-based)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


@contextmanager
def interrupted_at_epoch_3():
    """Runs in this block stop as Ctrl-C would stop them, at the start of their third epoch."""
    original = fitting.build_trainer

    def interrupting(config, run_dir, device, callbacks, **kwargs):
        return original(config, run_dir, device, [*callbacks, InterruptAt(2)], **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fitting, "build_trainer", interrupting)
        yield


def _config(tiny_mnist, out, **extra):
    return tiny_run_config(tiny_mnist, out, **{"epochs": 3, "batch_size": 32, "augment": "digits", **extra})


@pytest.mark.parametrize(
    "extra",
    [
        {},
        # Cached activations with layers above them to train (a head alone trains in the head loop,
        # which keeps no checkpoint: see test_head_loop).
        {"freeze": "until:layer2", "augment": "none"},
        {
            "mixup": 0.4,
            "cutmix": 1.0,
            "accumulate": 2,
            "grad_clip": 1.0,
            "class_weights": "auto",
            "sampler": "balanced",
        },
    ],
)
def test_interrupted_run_resumes_to_the_same_result(tiny_mnist, tmp_path, extra):
    reference = train(_config(tiny_mnist, tmp_path / "whole", **extra)).metrics

    with interrupted_at_epoch_3(), pytest.raises(TrainingInterrupted, match="resume with: tlearn train --resume"):
        train(_config(tiny_mnist, tmp_path / "cut", **extra))
    state = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert state["complete"] is False and state["interrupted"] is True

    resumed = resume(tmp_path / "cut").metrics
    assert resumed["complete"] is True and resumed["resumed"] is True
    assert [r["epoch"] for r in resumed["history"]] == [1, 2, 3]
    assert [int(r["epoch"]) for r in csv.DictReader((tmp_path / "cut" / "metrics.csv").open())] == [1, 2, 3]
    assert resumed["test_accuracy"] == reference["test_accuracy"]
    assert resumed["history"][-1]["train_loss"] == pytest.approx(reference["history"][-1]["train_loss"], rel=1e-6)


def test_resume_needs_a_checkpoint(tmp_path):
    with pytest.raises(TlearnError, match="not a tlearn run directory"):
        resume(tmp_path)
    (tmp_path / "config.yaml").write_text("epochs: 2\n")
    with pytest.raises(TlearnError, match="no checkpoint yet"):
        resume(tmp_path)


def test_gradual_schedule_unfreezes_at_the_milestone_and_resumes_unfrozen(tiny_mnist, tmp_path):
    extra = {"schedule": "gradual", "unfreeze_at": 1, "freeze": "none", "augment": "none"}
    reference = train(_config(tiny_mnist, tmp_path / "whole", **extra)).metrics
    assert reference["feature_cache"]["used"] is False

    with interrupted_at_epoch_3(), pytest.raises(TrainingInterrupted):
        train(_config(tiny_mnist, tmp_path / "cut", **extra))
    resumed = resume(tmp_path / "cut").metrics
    assert resumed["test_accuracy"] == reference["test_accuracy"]
    assert resumed["history"][-1]["train_loss"] == pytest.approx(reference["history"][-1]["train_loss"], rel=1e-6)


def test_full_disk_stops_with_one_line_and_the_run_resumes(tiny_mnist, tmp_path, monkeypatch, capsys):
    """The disk fills up while epoch 2 is being saved: one error line naming the run and how to resume.

    The checkpoint of epoch 1 stays whole (checkpoints are written to a temporary file and renamed),
    so ``--resume`` finishes the run once there is room again.
    """
    import errno

    import tlearn.training.checkpoints.writer as checkpoint_io
    from tlearn.cli import main

    saves, original_write = [], checkpoint_io.atomic_write

    def filling_disk(path, write):
        saves.append(path)
        if len(saves) > 2:  # epoch 1 writes last.ckpt and best.ckpt; then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        original_write(path, write)

    monkeypatch.setattr(checkpoint_io, "atomic_write", filling_disk)
    out = tmp_path / "run"
    args = [
        "train",
        "--data-dir",
        str(tiny_mnist),
        "--train-size",
        "120",
        "--test-size",
        "60",
        "--val-size",
        "40",
        "--epochs",
        "3",
        "--image-size",
        "32",
        "--batch-size",
        "32",
        "--backbone",
        "resnet18",
        "--weights",
        "none",
        "--no-progress",
        "--out",
        str(out),
    ]
    with pytest.raises(SystemExit) as stop:
        main(args)
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(lines) == 1, lines
    assert "no space left on device" in lines[0] and f"tlearn train --resume {out.resolve()}" in lines[0]
    assert json.loads((out / "metrics.json").read_text())["complete"] is False

    monkeypatch.setattr(checkpoint_io, "atomic_write", original_write)
    resumed = resume(out).metrics
    assert resumed["complete"] is True and [r["epoch"] for r in resumed["history"]] == [1, 2, 3]


def test_best_checkpoint_holds_weights_only_and_last_holds_the_optimiser(tiny_mnist, tmp_path):
    import torch

    run = train(_config(tiny_mnist, tmp_path / "run", epochs=1)).run_dir / "checkpoints"
    last = torch.load(run / "last.ckpt", map_location="cpu", weights_only=True)
    best = torch.load(run / "best.ckpt", map_location="cpu", weights_only=True)
    assert last["optimizer_states"] and "optimizer_states" not in best
    assert best["state_dict"].keys() == last["state_dict"].keys()


def test_checkpoints_leave_out_the_frozen_backbone_and_resume_refuses_other_weights(tiny_mnist, tmp_path):
    """A frozen backbone is not written again every epoch; a resume checks it is still the same."""
    import torch

    from tlearn.training.checkpoints import CONSTANT_KEY

    for name in ("kept", "tampered"):
        with interrupted_at_epoch_3(), pytest.raises(TrainingInterrupted):
            train(_config(tiny_mnist, tmp_path / name, freeze="backbone", augment="digits"))

    path = tmp_path / "tampered" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    left_out = checkpoint[CONSTANT_KEY]["keys"]
    assert left_out and all(".backbone." in key for key in left_out)
    assert not any(key in checkpoint["state_dict"] for key in left_out)
    assert any(".head." in key for key in checkpoint["state_dict"])  # the trained part is there
    checkpoint[CONSTANT_KEY]["digest"] = "0" * 32  # as if the pretrained weights had changed since
    torch.save(checkpoint, path)
    with pytest.raises(TlearnError, match="frozen weights differ"):
        resume(tmp_path / "tampered")
    assert resume(tmp_path / "kept").metrics["complete"] is True
