"""Classification metrics of a run's test predictions."""

from __future__ import annotations

import torch
from torch import nn


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[true, predicted]`` counts."""
    index = labels.long() * num_classes + predictions.long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_metrics(labels: torch.Tensor, logits: torch.Tensor, classes: list[str]) -> dict:
    """Accuracy, loss, confusion matrix and per-class precision/recall/F1 (fractions)."""
    predictions = logits.argmax(1)
    matrix = confusion_matrix(labels, predictions, len(classes))
    true_pos = matrix.diag().double()
    predicted = matrix.sum(0).double()
    actual = matrix.sum(1).double()
    precision = torch.where(predicted > 0, true_pos / predicted.clamp(min=1), torch.zeros_like(true_pos))
    recall = torch.where(actual > 0, true_pos / actual.clamp(min=1), torch.zeros_like(true_pos))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(denom))
    per_class = {
        name: {
            "precision": round(float(p), 6),
            "recall": round(float(r), 6),
            "f1": round(float(f), 6),
            "support": int(s),
        }
        for name, p, r, f, s in zip(classes, precision, recall, f1, actual)
    }
    return {
        "accuracy": float((predictions == labels).double().mean()) if labels.numel() else 0.0,
        "loss": float(nn.functional.cross_entropy(logits, labels)) if labels.numel() else 0.0,
        "samples": int(labels.numel()),
        "macro_f1": float(f1.mean()),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }
