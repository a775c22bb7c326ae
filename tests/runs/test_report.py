"""report.html: one self-contained page."""

import torch

from tlearn.data.splits import ImageSplit
from tlearn.runs.report import misclassified_grid, write_report


def test_report_embeds_its_figures_and_names_the_classes(tmp_path):
    split = ImageSplit(
        torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8), torch.tensor([0, 1, 0, 1, 0, 1]), ["cat", "dog"]
    )
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    grid = misclassified_grid(split, logits)
    assert grid[:4] == b"\x89PNG"
    metrics = {
        "test_accuracy": 0.5,
        "test_samples": 6,
        "train_samples": 10,
        "epochs": 1,
        "seed": 0,
        "backbone": "resnet18",
        "weights": "none",
        "freeze": "none",
        "val_source": "none",
        "val_samples": 0,
        "per_class": {
            "cat": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 3},
            "dog": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 3},
        },
        "train_seconds": 1.0,
        "eval_seconds": 0.1,
        "total_seconds": 2.0,
        "device": "cpu",
        "feature_cache": {"used": False, "reason": "nothing is frozen"},
    }
    page = write_report(tmp_path, {"lr": 0.1}, metrics, grid).read_text()
    assert "Test accuracy 50.00% on 6 test images" in page and "dog" in page and "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # self-contained
