"""Options for real-world data: the best epoch, early stopping, class imbalance, mixup and cutmix,
gradient clipping and accumulation, and never writing over a finished run."""

import csv
import json

import numpy as np
import pytest
import torch

from tests.helpers import write_idx_images, write_idx_labels
from tlearn.config import make_config
from tlearn.errors import RunError
from tlearn.training.pipeline import train

SMALL = {
    "image_size": 32,
    "batch_size": 32,
    "progress": False,
    "train_size": 120,
    "test_size": 60,
    "val_size": 60,
    "backbone": "resnet18",
    "weights": "none",
    "augment": "none",
}


def _run(data, tmp_path, name, **values):
    return train(make_config({**SMALL, "data_dir": str(data), "out": str(tmp_path / name), **values}))


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_the_saved_model_is_the_best_validation_epoch(tiny_mnist, tmp_path):
    best = _run(tiny_mnist, tmp_path, "best", epochs=4, lr=0.05)
    losses = [row["val_loss"] for row in best.metrics["history"]]
    assert best.metrics["keep"] == "best" and best.metrics["model_epoch"] == int(np.argmin(losses)) + 1
    checkpoint = torch.load(best.run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    assert checkpoint["epoch"] + 1 == best.metrics["model_epoch"]
    saved = _weights(best.run_dir)
    key = "head.fc.weight"
    assert torch.equal(saved[key], checkpoint["state_dict"][f"model.{key}"])
    last = _run(tiny_mnist, tmp_path, "last", epochs=4, lr=0.05, keep="last")
    assert last.metrics["keep"] == "last" and last.metrics["model_epoch"] == 4
    assert "The model is the one from epoch" in (best.run_dir / "report.html").read_text()
    if best.metrics["model_epoch"] != 4:  # the two runs trained identically; only the kept epoch differs
        assert not torch.equal(saved[key], _weights(last.run_dir)[key])


def test_no_validation_keeps_the_last_epoch(tiny_mnist, tmp_path):
    metrics = _run(tiny_mnist, tmp_path, "run", epochs=2, val_source="none").metrics
    assert (metrics["keep"], metrics["model_epoch"], metrics["stopped_early"]) == ("last", 2, False)


def test_early_stopping_stops_when_the_validation_loss_stops_falling(tiny_mnist, tmp_path, monkeypatch):
    """A scripted validation loss (lowest at epoch 2): with --early-stopping 2 training stops after
    epoch 4, and the model kept is epoch 2's."""
    from tlearn.training.module import TransferLearner

    script = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]

    def scripted(self, batch, batch_idx):
        self.log("val_loss", script[self.current_epoch], on_epoch=True, logger=False)

    monkeypatch.setattr(TransferLearner, "validation_step", scripted)
    metrics = _run(tiny_mnist, tmp_path, "run", epochs=8, early_stopping=2).metrics
    assert metrics["stopped_early"] and metrics["epochs"] == 4 and metrics["model_epoch"] == 2
    assert [row["val_loss"] for row in metrics["history"]] == pytest.approx(script[:4])
    plain = _run(tiny_mnist, tmp_path, "plain", epochs=5).metrics
    assert not plain["stopped_early"] and plain["epochs"] == 5 and plain["model_epoch"] == 2


def _imbalanced_mnist(root, real):
    """Digits 0-4 with 150 training images each, 5-9 with 3 each (50x); 60 test images per digit."""
    from tlearn.data.idx import load_idx

    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, prefix, counts in ((True, "train", [150] * 5 + [3] * 5), (False, "t10k", [60] * 10)):
        data = load_idx(real, split)
        labels = data.labels.numpy()
        idx = np.concatenate([rng.choice(np.where(labels == c)[0], n, replace=False) for c, n in enumerate(counts)])
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", data.images.numpy()[idx, 0])
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels[idx])
    return root


def test_class_weights_and_the_balanced_sampler_raise_balanced_accuracy(mnist_root, tmp_path):
    """On a 50:1 imbalanced training set (a linear probe on cached features, seed 0), weighting the loss
    by inverse class frequency and drawing classes equally often both help the rare digits.
    Measured here: balanced accuracy 57.0 % plain, 62.5 % weighted, 60.3 % balanced sampler (600 images);
    the assertions leave half of those gains as margin."""
    data = _imbalanced_mnist(tmp_path / "imbalanced", mnist_root)
    common = {
        "data_dir": str(data),
        "freeze": "backbone",
        "image_size": 48,
        "in_chans": 1,
        "epochs": 20,
        "lr": 0.01,
        "val_source": "none",
        "progress": False,
        "cache_dir": str(tmp_path / "cache"),
    }
    with pytest.warns(UserWarning, match="imbalanced training set.*--class-weights auto or --sampler balanced"):
        plain = train(make_config({**common, "out": str(tmp_path / "plain")})).metrics
    weighted = train(make_config({**common, "class_weights": "auto", "out": str(tmp_path / "w")})).metrics
    sampled = train(make_config({**common, "sampler": "balanced", "out": str(tmp_path / "s")})).metrics
    assert plain["test_samples"] == 600 and plain["feature_cache"]["used"]
    assert weighted["balanced_accuracy"] >= plain["balanced_accuracy"] + 0.025, (weighted, plain)
    assert sampled["balanced_accuracy"] >= plain["balanced_accuracy"] + 0.015, (sampled, plain)


def test_inverse_frequency_weights_and_balanced_draws():
    from tlearn.data.augment import inverse_frequency_weights
    from tlearn.data.loaders import train_sampler

    labels = torch.tensor([0] * 90 + [1] * 10)
    weights = inverse_frequency_weights(labels, 2)
    torch.testing.assert_close(weights, torch.tensor([100 / 180, 100 / 20]))
    sampler = train_sampler(True, labels, 10_000, torch.Generator().manual_seed(0))
    drawn = labels[list(sampler)]
    assert abs(float(drawn.float().mean()) - 0.5) < 0.03  # each class about half the time


def test_mixup_and_cutmix_mix_images_and_labels():
    from tlearn.data.augment import batch_mix

    assert batch_mix(0.0, 0.0, 3) is None
    images = torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)])
    labels = torch.tensor([0, 2])
    torch.manual_seed(0)
    mixed, soft = batch_mix(1.0, 0.0, 3)(images, labels)
    assert soft.shape == (2, 3) and torch.allclose(soft.sum(1), torch.ones(2))
    assert 0.0 < float(mixed[0].mean()) < 1.0 and soft[0, 0] > 0 and soft[0, 2] > 0  # convex combinations
    pasted, soft = batch_mix(0.0, 1.0, 3)(images, labels)
    assert set(pasted[0].unique().tolist()) <= {0.0, 1.0}  # CutMix pastes whole pixels, no blending


@pytest.mark.parametrize("values", [{"mixup": 0.4}, {"cutmix": 1.0}, {"mixup": 0.2, "cutmix": 1.0}])
def test_training_with_mixing_runs_and_changes_the_updates(tiny_mnist, tmp_path, values):
    plain = _run(tiny_mnist, tmp_path, "plain", epochs=1).metrics
    mixed = _run(tiny_mnist, tmp_path, "mixed", epochs=1, **values)
    assert mixed.metrics["complete"] and mixed.metrics["history"][0]["train_loss"] != plain["history"][0]["train_loss"]
    saved = (mixed.run_dir / "config.yaml").read_text()
    assert all(f"{key}: {value}" in saved for key, value in values.items())


def test_gradient_clipping_and_accumulation_reach_the_trainer(tiny_mnist, tmp_path):
    from tlearn.training.trainer import build_trainer

    trainer = build_trainer(make_config({"grad_clip": 0.5, "accumulate": 4}), tmp_path, "cpu", [])
    assert trainer.gradient_clip_val == 0.5 and trainer.accumulate_grad_batches == 4
    clipped = _run(tiny_mnist, tmp_path, "clip", epochs=1, grad_clip=0.01, lr=0.05).metrics
    free = _run(tiny_mnist, tmp_path, "free", epochs=1, lr=0.05).metrics
    assert clipped["history"][0]["train_loss"] != free["history"][0]["train_loss"]
    assert "accumulate: 1" in (tmp_path / "clip" / "config.yaml").read_text()


def test_a_finished_run_is_never_overwritten_by_accident(tiny_mnist, tmp_path):
    first = _run(tiny_mnist, tmp_path, "run", epochs=1, val_source="none")
    before = (first.run_dir / "metrics.json").read_text()
    with pytest.raises(RunError, match="holds a finished run; pass --overwrite"):
        _run(tiny_mnist, tmp_path, "run", epochs=1, val_source="none", seed=1)
    assert (first.run_dir / "metrics.json").read_text() == before
    again = train(
        make_config(
            {
                **SMALL,
                "data_dir": str(tiny_mnist),
                "out": str(first.run_dir),
                "epochs": 1,
                "val_source": "none",
                "seed": 1,
            }
        ),
        overwrite=True,
    )
    assert json.loads((again.run_dir / "metrics.json").read_text())["seed"] == 1
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text("epochs: 1\n")
    with pytest.raises(RunError, match=r"unfinished run; continue it with: tlearn train --resume"):
        _run(tiny_mnist, tmp_path, "half", epochs=1)


def test_compare_refuses_a_folder_with_a_comparison(tiny_mnist, tmp_path):
    from tlearn.training.compare import compare

    base = make_config({**SMALL, "data_dir": str(tiny_mnist), "epochs": 1, "val_source": "none"})
    compare(base, ["resnet18"], ["random"], [40], ["none"], tmp_path / "cmp")
    rows = list(csv.DictReader((tmp_path / "cmp" / "compare.csv").open()))
    with pytest.raises(RunError, match="holds a finished comparison; pass --overwrite"):
        compare(base, ["resnet18"], ["random"], [40], ["none"], tmp_path / "cmp")
    again = compare(base, ["resnet18"], ["random"], [40], ["none"], tmp_path / "cmp", overwrite=True)
    assert len(again) == len(rows) == 1
