"""Lightning callbacks of a run: the per-epoch history (with the state an exact resume needs) and gradual unfreezing."""

from __future__ import annotations

import time
from typing import Optional

import lightning.pytorch as pl
import torch
from torch import nn

from ..config import FreezeSpec


class GradualUnfreeze(pl.Callback):
    """Keeps the backbone frozen for the first ``unfreeze_at`` epochs, then applies ``target``.

    The check runs at the start of every epoch, so a run resumed after the milestone unfreezes
    again straight away instead of re-freezing (the optimiser already holds every parameter).
    """

    def __init__(self, model: nn.Module, target: FreezeSpec, unfreeze_at: int):
        self.model = model
        self.target = target
        self.unfreeze_at = unfreeze_at

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch >= self.unfreeze_at and self.model.fully_frozen:
            self.model.freeze(self.target)
            self.model.train()


# Progressive resizing grows the side over this share of the epochs; the rest run at full size, so
# the weights and BatchNorm statistics settle at the size the model is evaluated at.
GROWING_SHARE = 0.5


def resize_schedule(start: int, final: int, epochs: int) -> list[int]:
    """The training side of every epoch: linear from ``start`` to ``final`` (in multiples of 4) over
    the first :data:`GROWING_SHARE` of the epochs, then ``final``."""
    growing = int(epochs * GROWING_SHARE)
    return [
        max(8, 4 * round((start + (final - start) * epoch / growing) / 4)) if epoch < growing else final
        for epoch in range(epochs)
    ]


class ProgressiveResize(pl.Callback):
    """Sets the preprocessor's training side at the start of every epoch (see :func:`resize_schedule`).

    Looked up from the epoch number, so a resumed run or one whose epochs the time budget re-fits
    picks the right side without state of its own.
    """

    def __init__(self, preprocessor, start: int):
        self.preprocessor = preprocessor
        self.start = start

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        final = self.preprocessor.prep.image_size
        planned = getattr(pl_module, "planned_epochs", trainer.max_epochs)  # a time budget may re-plan them
        sizes = resize_schedule(self.start, final, int(planned))
        self.preprocessor.train_size = sizes[min(trainer.current_epoch, len(sizes) - 1)]

    def on_train_end(self, trainer, pl_module) -> None:
        self.preprocessor.train_size = None


class EpochHistory(pl.Callback):
    """Per-epoch metrics rows, plus the random state a resumed run needs to continue exactly.

    Its ``state_dict`` goes into every Lightning checkpoint: the rows so far and the states of the
    global torch RNG (dropout), the augmentation generator and the shuffling generator. A run
    resumed from ``last.ckpt`` therefore draws the same batches and augmentations as one that
    was never interrupted.

    Each finished epoch's row goes to the trainer's loggers (``metrics.csv`` through Lightning's
    ``CSVLogger``), and a resumed run logs the restored rows first, so the file holds every epoch.
    """

    def __init__(self, generators: Optional[dict[str, torch.Generator]] = None):
        self.rows: list[dict[str, float]] = []
        self.generators = generators or {}
        self._start = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        for row in self.rows:  # restored from a checkpoint: the loggers start empty
            self._log(trainer, row)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch + 1}
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            if key in metrics:
                row[key] = float(metrics[key])
        row["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        row["seconds"] = round(time.perf_counter() - self._start, 3)
        self.rows.append(row)
        self._log(trainer, row)

    @staticmethod
    def _log(trainer, row: dict) -> None:
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            logger.log_metrics(row, step=row["epoch"])
            logger.save()  # written every epoch, so a crash keeps the rows so far

    def state_dict(self) -> dict:
        return {
            "rows": [dict(r) for r in self.rows],
            "torch_rng": torch.get_rng_state(),
            "generators": {name: g.get_state() for name, g in self.generators.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.rows = [dict(r) for r in state.get("rows", [])]
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        for name, value in state.get("generators", {}).items():
            if name in self.generators:
                self.generators[name].set_state(value)
