"""Per-epoch CSV, learning-curve plots and the confusion-matrix figure of a run."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .utils import atomic_write_bytes, atomic_write_text

CSV_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def write_metrics_csv(path: Path, rows: list[dict]) -> None:
    """One row per epoch; missing values (no validation) stay empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in CSV_FIELDS})
    atomic_write_text(path, buffer.getvalue())


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display needed: figures are written to files
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def plot_curves(rows: list[dict], metric: str, path: Path, title: str) -> None:
    """Training and validation ``metric`` (``acc`` or ``loss``) per epoch, as seed 000 plots them."""
    plt = _pyplot()
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
    _save_figure(fig, path)
    plt.close(fig)


def plot_confusion_matrix(matrix: list[list[int]], classes: list[str], path: Path, title: str) -> None:
    """Counts with true labels on rows and predictions on columns."""
    plt = _pyplot()
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
    _save_figure(fig, path)
    plt.close(fig)


def write_predictions_csv(path: Path, images: list, ranked: list[list[tuple[str, float]]]) -> None:
    """``path,label,probability`` per image (plus ``top_k`` as ``label:prob;…`` when k > 1)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    k = len(ranked[0]) if ranked else 1
    writer.writerow(["path", "label", "probability"] + (["top_k"] if k > 1 else []))
    for image, row in zip(images, ranked):
        extra = [";".join(f"{c}:{p:.6f}" for c, p in row)] if k > 1 else []
        writer.writerow([str(image), row[0][0], f"{row[0][1]:.6f}", *extra])
    try:
        atomic_write_text(Path(path), buffer.getvalue())
    except OSError as err:
        from .errors import TlearnError

        raise TlearnError(f"cannot write {path}: {err.strerror}") from None
