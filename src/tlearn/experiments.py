"""Experiment helpers over ``train``: the LR range test and grids of runs (``tlearn compare``)."""

from __future__ import annotations

import csv
import io
import itertools
import time
import warnings
from pathlib import Path
from typing import Optional

import torch

from .config import TrainConfig
from .distributed import check_distributed
from .errors import TlearnError
from .utils import atomic_write_text


def lr_find(config: TrainConfig, out: Path, min_lr: float = 1e-6, max_lr: float = 1.0, steps: int = 100) -> dict:
    """Leslie Smith's range test: raise the LR exponentially over ``steps`` batches, record the loss.

    Writes ``lr_find.png`` and returns the suggested LR (steepest descent of the smoothed loss).
    """
    from lightning.pytorch.tuner import Tuner

    from .engine import TransferLearner
    from .reporting import _pyplot
    from .train import _quiet_lightning, _trainer, fit_inputs, prepare

    check_distributed(config, "lr-find")
    prepared = prepare(config.model_copy(update={"val_source": "none"}))
    resolved, device = prepared.config, prepared.device
    fit = fit_inputs(prepared)
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        _quiet_lightning()
        trainer = _trainer(resolved.model_copy(update={"epochs": max(1, config.epochs)}), out, device, [])
        finder = Tuner(trainer).lr_find(TransferLearner(fit.module, fit.preprocessor, resolved), fit.train_loader,
                                        min_lr=min_lr, max_lr=max_lr, num_training=steps, update_attr=False)
    if finder is None or not finder.results.get("lr"):
        raise TlearnError("the LR range test produced no result (too few training batches?)")
    suggestion = finder.suggestion()
    plt = _pyplot()
    fig = finder.plot(suggest=True)
    fig.axes[0].set_title(f"LR range test: suggested {suggestion:.2e}" if suggestion else "LR range test")
    fig.savefig(out / "lr_find.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    for leftover in out.glob(".lr_find_*.ckpt"):
        leftover.unlink()
    return {"suggested_lr": suggestion, "plot": str(out / "lr_find.png"), "points": len(finder.results["lr"])}


def compare(base: TrainConfig, backbones: list[str], inits: list[str], train_sizes: list[Optional[int]],
            freezes: list[str], out: Path) -> list[dict]:
    """Train every combination; write ``compare.csv``, ``compare.md`` and ``compare.png`` in ``out``.

    Frozen-backbone runs reuse cached features across the grid (same images and weights give
    the same cache key), so a size sweep pays for each image's forward pass once.
    """
    from .train import train

    check_distributed(base, "compare")
    rows = []
    grid = list(itertools.product(backbones, inits, freezes, train_sizes))
    for i, (backbone, init, freeze, size) in enumerate(grid, 1):
        weights = {"pretrained": "imagenet", "random": "none"}.get(init, init)
        name = f"{backbone.replace('/', '-')}_{init}_{freeze.replace(':', '-')}_{size or 'all'}"
        config = base.model_copy(update={"backbone": backbone, "weights": weights, "freeze": freeze, "train_size": size,
                                         "out": str(out / "runs" / name), "progress": False})
        started = time.perf_counter()
        metrics = train(TrainConfig(**config.model_dump())).metrics
        rows.append({"backbone": backbone, "init": init, "freeze": freeze, "train_size": metrics["train_samples"],
                     "test_accuracy": round(metrics["test_accuracy"], 6), "test_samples": metrics["test_samples"],
                     "seconds": round(time.perf_counter() - started, 1), "feature_cache": metrics["feature_cache"]["used"]})
        print(f"[{i}/{len(grid)}] {name}: {100 * metrics['test_accuracy']:.2f}% on {metrics['test_samples']}", flush=True)
    _write_tables(rows, out)
    _plot(rows, out / "compare.png")
    return rows


def _write_tables(rows: list[dict], out: Path) -> None:
    fields = ["backbone", "init", "freeze", "train_size", "test_accuracy", "test_samples", "seconds", "feature_cache"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "compare.csv", buffer.getvalue())
    lines = ["| backbone | init | freeze | train images | test accuracy | test images | seconds |", "|---|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['backbone']} | {r['init']} | {r['freeze']} | {r['train_size']} | {100 * r['test_accuracy']:.2f}% | "
              f"{r['test_samples']} | {r['seconds']} |" for r in rows]
    atomic_write_text(out / "compare.md", "\n".join(lines) + "\n")


def _plot(rows: list[dict], path: Path) -> None:
    from .reporting import _pyplot, _save_figure

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for key in sorted({(r["backbone"], r["init"], r["freeze"]) for r in rows}):
        points = sorted((r["train_size"], r["test_accuracy"]) for r in rows if (r["backbone"], r["init"], r["freeze"]) == key)
        ax.plot([p[0] for p in points], [100 * p[1] for p in points], "o-", label=" / ".join(key))
    ax.set_xscale("log")
    ax.set(xlabel="training images", ylabel="test accuracy (%)", title="Accuracy vs training-set size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save_figure(fig, path)
    plt.close(fig)
