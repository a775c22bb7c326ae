"""report.html: one self-contained page."""

import torch

from tlearn.data.splits import ImageSplit
from tlearn.runs.record import RunRecord
from tlearn.runs.report import confused_pairs, top_losses, top_losses_grid, write_report


def test_report_embeds_its_figures_and_names_the_classes(tmp_path):
    split = ImageSplit(
        torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8), torch.tensor([0, 1, 0, 1, 0, 1]), ["cat", "dog"]
    )
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert top_losses_grid(split, logits)[:4] == b"\x89PNG"
    record = RunRecord.model_validate(
        {
            "test_accuracy": 0.5,
            "test_loss": 0.7,
            "test_samples": 6,
            "train_samples": 10,
            "epochs": 1,
            "seed": 0,
            "backbone": "resnet18",
            "weights": "none",
            "freeze": "none",
            "image_size": 28,
            "val_source": "none",
            "val_samples": 0,
            "macro_f1": 0.5,
            "per_class": {
                "cat": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 3},
                "dog": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 3},
            },
            "history": [],
            "train_seconds": 1.0,
            "eval_seconds": 0.1,
            "total_seconds": 2.0,
            "device": "cpu",
            "machine": {"cpu": "AMD EPYC 9R14", "cpu_threads": 2, "accelerator": None},
            "feature_cache": {"used": False, "reason": "nothing is frozen"},
            "confusion_matrix": [[2, 1], [1, 2]],
            "keep": "best",
            "model_epoch": 1,
        }
    )
    page = write_report(tmp_path, {"lr": 0.1}, record, split, logits).read_text()
    assert "Most confused classes" in page and "Top losses" in page and "from epoch 1 of 1" in page
    assert "Test accuracy 50.00% on 6 test images" in page and "dog" in page and "data:image/png;base64," in page
    assert "cpu (AMD EPYC 9R14)" in page  # timings name the machine they were taken on
    assert "http://" not in page and "https://" not in page  # self-contained


def test_top_losses_and_confused_pairs_are_ranked():
    labels = torch.tensor([0, 1, 1, 2])
    logits = torch.tensor([[3.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 1.0, 0.9], [0.0, 0.0, 5.0]])
    ranked = top_losses(labels, logits, n=2)
    assert [r["index"] for r in ranked] == [1, 2] and ranked[0]["predicted"] == 0 and ranked[0]["loss"] > 4
    assert 0 < ranked[1]["p_true"] < 0.5 < ranked[0]["p_predicted"]
    matrix = [[5, 0, 1], [3, 2, 0], [0, 1, 4]]
    assert confused_pairs(matrix, ["a", "b", "c"]) == [("b", "a", 3), ("a", "c", 1), ("c", "b", 1)]
