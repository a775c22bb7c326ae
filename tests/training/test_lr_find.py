"""The LR range test."""

import os

from tlearn.config import make_config
from tlearn.training.lr_find import lr_find

BASE = {
    "image_size": 32,
    "batch_size": 20,
    "progress": False,
    "test_size": 40,
    "val_source": "none",
    "epochs": 1,
    "augment": "none",
}


def test_lr_find_suggests_a_learning_rate_and_plots(tiny_mnist, tmp_path):
    cfg = make_config(
        {**BASE, "data_dir": str(tiny_mnist), "train_size": 200, "backbone": "resnet18", "weights": "none"}
    )
    before = os.environ.get("PL_GLOBAL_SEED")
    result = lr_find(cfg, tmp_path / "lrf", steps=12)
    assert (tmp_path / "lrf" / "lr_find.png").stat().st_size > 1000
    assert result["points"] >= 5
    assert result["suggested_lr"] is None or 1e-6 <= result["suggested_lr"] <= 1.0
    assert os.environ.get("PL_GLOBAL_SEED") == before  # seeded inside the run's environment, restored after
