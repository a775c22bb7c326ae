"""Classification metrics."""

import pytest
import torch

from tlearn.runs.metrics import classification_metrics, confusion_matrix


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    matrix = confusion_matrix(torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 1]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_metrics_of_known_predictions():
    labels = torch.tensor([0, 0, 1, 1])
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [0.0, 2.0]])
    m = classification_metrics(labels, logits, ["a", "b"])
    assert m["accuracy"] == 0.75 and m["samples"] == 4
    assert m["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3, abs=1e-6), "support": 2}
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3, abs=1e-6) and m["per_class"]["b"]["recall"] == 1.0
    assert m["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item())
