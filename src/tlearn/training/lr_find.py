"""The learning-rate range test (``tlearn lr-find``)."""

from __future__ import annotations

import warnings
from pathlib import Path

from ..config import TrainConfig
from ..errors import TlearnError
from ..runs.plots import pyplot
from .distributed import check_distributed, launch_environment
from .optim import OptimSettings
from .run import Run
from .trainer import build_trainer, quiet_lightning


def lr_find(config: TrainConfig, out: Path, min_lr: float = 1e-6, max_lr: float = 1.0, steps: int = 100) -> dict:
    """Leslie Smith's range test: raise the LR exponentially over ``steps`` batches, record the loss.

    Writes ``lr_find.png`` and returns the suggested LR (steepest descent of the smoothed loss).
    """
    from lightning.pytorch.tuner import Tuner

    from .module import TransferLearner

    check_distributed(config, "lr-find")
    config = config.with_changes(val_source="none", epochs=max(1, config.epochs))
    with launch_environment():
        run = Run.prepare(config)
        out.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            quiet_lightning()
            trainer = build_trainer(config, out, run.device, [], log_epochs=False)
            learner = TransferLearner(run.feed.module, run.feed.preprocessor, OptimSettings.of(config))
            finder = Tuner(trainer).lr_find(
                learner, run.feed.train_loader, min_lr=min_lr, max_lr=max_lr, num_training=steps, update_attr=False
            )
    if finder is None or not finder.results.get("lr"):
        raise TlearnError("the LR range test produced no result (too few training batches?)")
    suggestion = finder.suggestion()
    plt = pyplot()
    fig = finder.plot(suggest=True)
    fig.axes[0].set_title(f"LR range test: suggested {suggestion:.2e}" if suggestion else "LR range test")
    fig.savefig(out / "lr_find.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    for leftover in out.glob(".lr_find_*.ckpt"):
        leftover.unlink()
    return {"suggested_lr": suggestion, "plot": str(out / "lr_find.png"), "points": len(finder.results["lr"])}
