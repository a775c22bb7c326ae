"""The figures of a run: learning curves, the confusion matrix, accuracy against training-set size."""

from __future__ import annotations

import io
from pathlib import Path

from ..fileio import atomic_write_bytes


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed: figures are written to files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Write a figure as PNG, atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def plot_curves(rows: list[dict], metric: str, path: Path, title: str) -> None:
    """Training and validation ``metric`` (``acc`` or ``loss``) per epoch, as seed 000 plots them."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [r["epoch"] for r in rows]
    for split, style in (("train", "o-"), ("val", "s--")):
        key = f"{split}_{metric}"
        points = [(e, r[key]) for e, r in zip(epochs, rows) if key in r]
        if points:
            label = "training" if split == "train" else "validation"
            ax.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy" if metric == "acc" else "loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)
    plt.close(fig)


def plot_confusion_matrix(matrix: list[list[int]], classes: list[str], path: Path, title: str) -> None:
    """Counts with true labels on rows and predictions on columns."""
    plt = pyplot()
    n = len(classes)
    size = max(4.0, min(14.0, 0.5 * n + 2))
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=90 if n > 12 else 0)
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 20:
        peak = max(max(row) for row in matrix) or 1
        for i in range(n):
            for j in range(n):
                colour = "white" if matrix[i][j] > peak / 2 else "black"
                ax.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=8, color=colour)
    save_figure(fig, path)
    plt.close(fig)


def plot_accuracy_vs_size(rows: list[dict], path: Path) -> None:
    """Test accuracy against training-set size, one line per (backbone, init, freeze) of a grid."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for key in sorted({(r["backbone"], r["init"], r["freeze"]) for r in rows}):
        points = sorted(
            (r["train_size"], r["test_accuracy"]) for r in rows if (r["backbone"], r["init"], r["freeze"]) == key
        )
        ax.plot([p[0] for p in points], [100 * p[1] for p in points], "o-", label=" / ".join(key))
    ax.set_xscale("log")
    ax.set(xlabel="training images", ylabel="test accuracy (%)", title="Accuracy vs training-set size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)
    plt.close(fig)
