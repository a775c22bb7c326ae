"""The CSV file ``tlearn predict --output`` writes: one row of ranked classes per image."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..errors import RunError
from ..fileio import atomic_write_text


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
        raise RunError(f"cannot write {path}: {err.strerror}") from None
