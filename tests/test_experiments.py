"""lr-find, compare and backbones: the experiment commands on tiny data."""

import csv
import subprocess
import sys

from tlearn.catalog import catalog
from tlearn.config import make_config
from tlearn.experiments import compare, lr_find

BASE = {"image_size": 32, "batch_size": 20, "progress": False, "test_size": 40, "val_source": "none", "epochs": 1,
        "augment": "none"}


def test_lr_find_suggests_a_learning_rate_and_plots(tiny_mnist, tmp_path):
    cfg = make_config({**BASE, "data_dir": str(tiny_mnist), "train_size": 200, "backbone": "resnet18", "weights": "none"})
    result = lr_find(cfg, tmp_path / "lrf", steps=12)
    assert (tmp_path / "lrf" / "lr_find.png").stat().st_size > 1000
    assert result["points"] >= 5
    assert result["suggested_lr"] is None or 1e-6 <= result["suggested_lr"] <= 1.0


def test_compare_grid_reuses_cached_features(tiny_mnist, tmp_path):
    cfg = make_config({**BASE, "data_dir": str(tiny_mnist), "cache_dir": str(tmp_path / "cache")})
    rows = compare(cfg, ["resnet18"], ["random"], [40, 80], ["backbone"], tmp_path / "cmp")
    assert [r["train_size"] for r in rows] == [40, 80] and all(r["feature_cache"] for r in rows)
    table = list(csv.DictReader((tmp_path / "cmp" / "compare.csv").open()))
    assert len(table) == 2 and float(table[0]["test_accuracy"]) >= 0
    assert (tmp_path / "cmp" / "compare.png").is_file() and "| resnet18 |" in (tmp_path / "cmp" / "compare.md").read_text()


def test_catalog_reports_offline_availability():
    entries = {e.name: e for e in catalog()}
    assert entries["efficientnet_lite0"].offline is True and entries["efficientnet_lite0"].params_millions == 4.7
    assert entries["resnet50"].params_millions == 25.6 and entries["resnet50"].image_size == 224
    assert entries["resnet50"].offline is False  # the test's private torch cache is empty
    offline = catalog(offline_only=True)
    assert [e.name for e in offline] == ["efficientnet_lite0"]


def test_compare_rejects_bad_lists():
    result = subprocess.run([sys.executable, "-m", "tlearn.cli", "compare", "--init", "pretrained,imagenet21k"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--init takes pretrained and/or random" in result.stderr
    result = subprocess.run([sys.executable, "-m", "tlearn.cli", "compare", "--train-sizes", "100,lots"], capture_output=True, text=True)
    assert result.returncode == 2 and "not 'lots'" in result.stderr
