"""Grids of runs (``tlearn compare``): every combination of backbones, inits, freezing and sizes."""

from __future__ import annotations

import csv
import io
import itertools
import time
from pathlib import Path
from typing import Optional

from ..config import TrainConfig
from ..errors import RunError
from ..fileio import atomic_write_text
from ..messages import say
from ..runs.plots import plot_accuracy_vs_size
from .distributed import check_distributed
from .pipeline import train

INIT_WEIGHTS = {"pretrained": "imagenet", "random": "none"}
TABLE_FIELDS = [
    "backbone",
    "init",
    "freeze",
    "train_size",
    "image_size",
    "test_accuracy",
    "test_samples",
    "seconds",
    "feature_cache",
]


def compare(
    base: TrainConfig,
    backbones: list[str],
    inits: list[str],
    train_sizes: list[Optional[int]],
    freezes: list[str],
    out: Path,
    overwrite: bool = False,
) -> list[dict]:
    """Train every combination; write ``compare.csv``, ``compare.md`` and ``compare.png`` in ``out``.

    Frozen-backbone runs reuse cached features across the grid (same images and weights give
    the same cache key), so a size sweep pays for each image's forward pass once. A folder that
    already holds a comparison is refused unless ``overwrite``.
    """
    check_distributed(base, "compare")
    _refuse_existing(out, overwrite)
    rows = []
    grid = list(itertools.product(backbones, inits, freezes, train_sizes))
    for i, (backbone, init, freeze, size) in enumerate(grid, 1):
        name = f"{backbone.replace('/', '-')}_{init}_{freeze.replace(':', '-')}_{size or 'all'}"
        config = base.with_changes(
            backbone=backbone,
            weights=INIT_WEIGHTS.get(init, init),
            freeze=freeze,
            train_size=size,
            out=str(out / "runs" / name),
            progress=False,
        )
        started = time.perf_counter()
        record = train(config, overwrite=overwrite).record
        fitted = record.time_budget  # --time-budget may freeze more and shrink the images
        rows.append(
            {
                "backbone": backbone,
                "init": init,
                "freeze": fitted.freeze if fitted is not None else freeze,
                "train_size": record.train_samples,
                "image_size": record.image_size,
                "test_accuracy": round(record.test_accuracy, 6),
                "test_samples": record.test_samples,
                "seconds": round(time.perf_counter() - started, 1),
                "feature_cache": record.feature_cache.used,
            }
        )
        say(f"[{i}/{len(grid)}] {name}: {100 * record.test_accuracy:.2f}% on {record.test_samples}")
    _write_tables(rows, out)
    plot_accuracy_vs_size(rows, out / "compare.png")
    return rows


def _refuse_existing(out: Path, overwrite: bool) -> None:
    if overwrite or not out.is_dir():
        return
    if (out / "compare.csv").is_file():
        raise RunError(f"{out} holds a finished comparison; pass --overwrite to replace it, or choose another --out")
    if (out / "runs").is_dir():
        raise RunError(f"{out} holds an unfinished comparison; pass --overwrite to start it again, or another --out")


def _write_tables(rows: list[dict], out: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "compare.csv", buffer.getvalue())
    lines = [
        "| backbone | init | freeze | train images | image px | test accuracy | test images | seconds |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['backbone']} | {r['init']} | {r['freeze']} | {r['train_size']} | {r['image_size']} | "
        f"{100 * r['test_accuracy']:.2f}% | "
        f"{r['test_samples']} | {r['seconds']} |"
        for r in rows
    ]
    atomic_write_text(out / "compare.md", "\n".join(lines) + "\n")
