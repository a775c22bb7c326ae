"""Grids of runs."""

import csv

from tlearn.config import make_config
from tlearn.training.compare import compare

BASE = {
    "image_size": 32,
    "batch_size": 20,
    "progress": False,
    "test_size": 40,
    "val_source": "none",
    "epochs": 1,
    "augment": "none",
}


def test_compare_grid_reuses_cached_features(tiny_mnist, tmp_path):
    cfg = make_config({**BASE, "data_dir": str(tiny_mnist), "cache_dir": str(tmp_path / "cache")})
    rows = compare(cfg, ["resnet18"], ["random"], [40, 80], ["backbone"], tmp_path / "cmp")
    assert [r["train_size"] for r in rows] == [40, 80] and all(r["feature_cache"] for r in rows)
    table = list(csv.DictReader((tmp_path / "cmp" / "compare.csv").open()))
    assert len(table) == 2 and float(table[0]["test_accuracy"]) >= 0
    assert (tmp_path / "cmp" / "compare.png").is_file() and "| resnet18 |" in (
        tmp_path / "cmp" / "compare.md"
    ).read_text()


def test_a_budgeted_cell_reports_what_it_trained(tiny_mnist, tmp_path, monkeypatch):
    from tlearn.training import budget
    from tlearn.training.budget_keeper import BudgetKeeper

    # Too few of the 20 epochs fit with nothing frozen (1 s a step), all of them frozen (0.01 s).
    monkeypatch.setattr(budget, "_time_steps", lambda run, size=None: 0.01 if run.config.freeze.any else 1)
    monkeypatch.setattr(BudgetKeeper, "epoch_done", lambda self, done, seconds, learner: None)
    cfg = make_config({**BASE, "data_dir": str(tiny_mnist), "time_budget": 20, "epochs": 20, "augment": "digits"})
    rows = compare(cfg, ["resnet18"], ["random"], [40], ["none"], tmp_path / "cmp")
    assert rows[0]["freeze"] == "until:layer1" and rows[0]["image_size"] == 32
    assert "| resnet18 | random | until:layer1 | 40 | 32 |" in (tmp_path / "cmp" / "compare.md").read_text()
