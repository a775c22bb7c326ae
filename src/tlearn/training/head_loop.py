"""Training the head alone on cached features of a frozen backbone, in a plain loop.

With the whole backbone frozen and its outputs cached, what trains is a small head on stored
tensors: a step is little arithmetic. Lightning's loop adds its own work to every step on the
CPU (hooks, logging, a checkpoint file every epoch), as much as the step itself or more, and its
import (with torchmetrics) a fixed cost; on such a run those overheads are a large share of the
whole (the cache benchmark's figures are in docs/performance.md).

So this one case trains here, built from the Lightning path's own parts rather than beside
them: the same loaders (the same batches in the same order), the same loss
(:func:`~.objective.batch_loss`), the same optimiser and per-step schedule
(:func:`~.optim.make_optimizer`), the same epoch rows in ``metrics.csv`` (equal to float
rounding: Lightning averages its logged value once more) and the same best epoch (the first
with the lowest validation loss). Whatever it does not do sends a run to Lightning
(:func:`lightning_needed`): this loop is not a second trainer to grow.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..config import TrainConfig
from ..fileio import atomic_write_text
from .checkpoints import constant_state
from .distributed import is_distributed
from .feed import Feed
from .objective import batch_loss, batch_sums, non_finite_loss
from .optim import OptimSettings, make_optimizer
from .outcome import TrainingOutcome


@dataclass(frozen=True)
class HeadLoopSettings:
    """The options the head loop follows."""

    epochs: int
    keep_best: bool
    progress: bool
    label_smoothing: float
    optim: OptimSettings

    @classmethod
    def of(cls, config: TrainConfig) -> HeadLoopSettings:
        keep_best = config.keep == "best"
        return cls(config.epochs, keep_best, config.progress, config.label_smoothing, OptimSettings.of(config))


def lightning_needed(
    config: TrainConfig, feed: Feed, resume_from: Optional[Path], callbacks: tuple | list = ()
) -> Optional[str]:
    """Why the run needs Lightning's Trainer, or None when it trains only a head on cached features."""
    if not feed.cache.used:
        return f"no feature cache ({feed.cache.reason or 'off'})"
    if not feed.cache.whole_backbone:
        return "layers of the backbone train"
    if resume_from is not None:
        return "it resumes from a Lightning checkpoint"
    if callbacks:
        return "a callback (the time budget) follows its epochs"
    if is_distributed(config):
        return "it trains in several processes"
    lightning_options = {
        "--logger": any(name != "csv" for name in config.loggers),
        "--ema": config.ema,
        "--early-stopping": config.early_stopping,
        "--grad-clip": config.grad_clip,
        "--accumulate": config.accumulate > 1,
        "--precision": config.precision != "32-true",
        "--compile": config.compile,
    }
    asked = [flag for flag, value in lightning_options.items() if value]
    return f"{asked[0]} works through Lightning" if asked else None


def train_head(
    settings: HeadLoopSettings,
    feed: Feed,
    history: Optional[Path],
    device: str,
    class_weights: Optional[torch.Tensor] = None,
) -> TrainingOutcome:
    """Train ``feed.module`` (the head above the cache) for ``settings.epochs``; see the module docstring.

    ``history`` (the run's ``metrics.csv``, or None) is written after every epoch. Ctrl-C ends
    training after the rows so far;
    there is no checkpoint to resume from, as the cached features make a new start cost only
    the head's seconds (``--resume`` starts it again).
    """
    model = feed.module.to(torch.device(device))
    weights = class_weights.to(device) if class_weights is not None else None
    parts = make_optimizer(model, settings.optim, settings.epochs * len(feed.train_loader))
    optimizer, schedule = parts["optimizer"], parts.get("lr_scheduler", {}).get("scheduler")
    best = BestEpoch(model) if settings.keep_best and feed.val_loader is not None else None
    rows: list[dict] = []
    started = time.perf_counter()
    interrupted = False
    try:
        with EpochProgress(settings.epochs, settings.progress) as progress:
            for epoch in range(settings.epochs):
                epoch_started = time.perf_counter()
                steps = _Steps(optimizer, schedule, settings.label_smoothing, weights, device)
                train = _train_epoch(model, feed.train_loader, steps, epoch)
                val = _validate(model, feed.val_loader, device) if feed.val_loader is not None else None
                rows.append(_row(epoch, train, val, optimizer, time.perf_counter() - epoch_started))
                if history is not None:  # every epoch, so a crash keeps the rows so far
                    write_history(history, rows)
                if best is not None:
                    best.offer(rows[-1])
                progress.show(rows[-1])
    except KeyboardInterrupt:
        interrupted = True
    restore = best.restore if best is not None and best.epoch is not None else None
    seconds = time.perf_counter() - started
    return TrainingOutcome(rows, interrupted, seconds, restore_best=restore, resumable=False, trainer="head loop")


@dataclass
class _Steps:
    """What each training step of the loop uses besides the model and the batch."""

    optimizer: torch.optim.Optimizer
    schedule: object  # a per-step LR scheduler, or None
    label_smoothing: float
    class_weights: Optional[torch.Tensor]
    device: str


@torch.enable_grad()  # as Lightning does: a caller inside torch.no_grad() still trains
def _train_epoch(model: nn.Module, loader, steps: _Steps, epoch: int) -> torch.Tensor:
    model.train()
    sums = torch.zeros(3)
    for step, batch in enumerate(loader):
        batch = [t.to(steps.device, non_blocking=True) for t in batch]
        loss, acc, n = batch_loss(
            model, batch, True, label_smoothing=steps.label_smoothing, class_weights=steps.class_weights
        )
        if not torch.isfinite(loss):
            raise non_finite_loss(loss.item(), epoch + 1, step + 1, checkpointed=False)
        steps.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        steps.optimizer.step()
        if steps.schedule is not None:  # per step, as the Lightning path steps it
            steps.schedule.step()
        sums += batch_sums(loss, acc, n).cpu()
    return sums


@torch.inference_mode()
def _validate(model: nn.Module, loader, device: str) -> torch.Tensor:
    model.eval()
    sums = torch.zeros(3)
    for batch in loader:
        loss, acc, n = batch_loss(model, [t.to(device, non_blocking=True) for t in batch], False)
        sums += batch_sums(loss, acc, n).cpu()
    return sums


def _row(epoch: int, train: torch.Tensor, val: Optional[torch.Tensor], optimizer, seconds: float) -> dict:
    """The epoch's row, with the keys the Lightning path's ``EpochHistory`` records."""
    row = {"epoch": epoch + 1}
    for split, sums in (("train", train), ("val", val)):
        if sums is not None:
            row[f"{split}_loss"] = float(sums[0] / sums[2])
            row[f"{split}_acc"] = float(sums[1] / sums[2])
    row["lr"] = float(optimizer.param_groups[0]["lr"])
    row["seconds"] = round(seconds, 3)
    return row


class BestEpoch:
    """A copy of the trainable weights of the epoch with the lowest validation loss (the first of
    equals), chosen as Lightning's ``ModelCheckpoint`` chooses: the first epoch always, a NaN loss
    counting as infinite."""

    def __init__(self, model: nn.Module):
        self.model = model
        constant = constant_state(model)  # the frozen backbone: never copied
        self.keys = [key for key in model.state_dict() if key not in constant]
        self.loss, self.epoch, self.state = math.inf, None, {}

    def offer(self, row: dict) -> None:
        loss = row.get("val_loss", math.nan)
        loss = math.inf if math.isnan(loss) else loss
        if self.epoch is None or loss < self.loss:
            own = self.model.state_dict()
            self.loss, self.epoch = loss, row["epoch"]
            self.state = {key: own[key].detach().clone() for key in self.keys}

    def restore(self) -> int:
        """Put the best epoch's weights back into the model; returns that epoch (from 1)."""
        own = self.model.state_dict()
        with torch.no_grad():
            for key, value in self.state.items():
                own[key].copy_(value)
        return self.epoch


def write_history(path: Path, rows: list[dict]) -> None:
    """``metrics.csv`` as the Lightning path's CSV logger writes it: sorted columns, ``step`` = epoch."""
    if not rows:
        return
    records = [{**row, "step": row["epoch"]} for row in rows]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=sorted({key for record in records for key in record}))
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(path, text.getvalue())


class EpochProgress:
    """One progress bar over the epochs, with the last epoch's accuracies (nothing when ``enabled`` is off)."""

    def __init__(self, epochs: int, enabled: bool):
        self.epochs, self.enabled = epochs, enabled
        self._bar = self._task = None

    def __enter__(self) -> EpochProgress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            columns = [TextColumn("Head on cached features"), BarColumn(), MofNCompleteColumn()]
            columns += [TimeElapsedColumn(), TextColumn("{task.fields[scores]}")]
            self._bar = Progress(*columns, auto_refresh=False)  # no refresh thread: it updates once an epoch
            self._bar.start()
            self._task = self._bar.add_task("", total=self.epochs, scores="")
        return self

    def show(self, row: dict) -> None:
        if self._bar is not None:
            scores = "  ".join(f"{key}: {row[key]:.3f}" for key in ("val_acc", "train_acc") if key in row)
            self._bar.update(self._task, completed=row["epoch"], scores=scores, refresh=True)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
