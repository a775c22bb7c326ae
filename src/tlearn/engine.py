"""The Lightning side of training: the LightningModule, optimisers, schedules, epoch history.

Batches arrive as uint8 images; the module preprocesses them on the device (resize, augment,
normalise) right before the forward pass, so the data loader stays trivial and cheap.
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from .errors import TlearnError
from .transforms import BatchPreprocessor


class NonFiniteLossError(TlearnError):
    """The loss became NaN or infinite; training stops and the last good checkpoint is kept."""


class TransferLearner(pl.LightningModule):
    """Trains a :class:`~tlearn.model.TransferModel` on uint8 image batches."""

    def __init__(self, model: nn.Module, preprocessor: Optional[BatchPreprocessor], config: Any, groups: Optional[list] = None):
        super().__init__()
        self.model = model
        self.preprocessor = preprocessor
        self.config = config
        self.groups = groups  # [(params, lr multiplier)]; None = every trainable parameter at --lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch, train: bool):
        images, labels = batch
        # Without a preprocessor the inputs are cached activations, already model-ready.
        inputs = self.preprocessor(images, train=train) if self.preprocessor is not None else images
        logits = self.model(inputs)
        smoothing = self.config.label_smoothing if train else 0.0
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=smoothing)
        acc = (logits.argmax(1) == labels).float().mean()
        return loss, acc, labels.shape[0]

    def training_step(self, batch, batch_idx: int):
        loss, acc, n = self._step(batch, train=True)
        bad = not torch.isfinite(loss)
        if self.trainer.world_size > 1:  # every rank stops together, or the others wait in all-reduce
            bad = self.trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            raise NonFiniteLossError(
                f"loss became {loss.item() if not torch.isfinite(loss) else 'non-finite in another process'} "
                f"at epoch {self.current_epoch + 1}, step {batch_idx + 1}; "
                "lower --lr or check the data (the last good checkpoint is kept)"
            )
        # sync_dist: under DDP the epoch figures average over every process's batches (a no-op alone).
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        self.log("train_acc", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx: int):
        loss, acc, n = self._step(batch, train=False)
        self.log("val_loss", loss, on_epoch=True, batch_size=n, sync_dist=True)
        self.log("val_acc", acc, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True)

    def configure_optimizers(self):
        return make_optimizer(self.model, self.config, self.trainer.estimated_stepping_batches, self.groups)


def make_optimizer(model: nn.Module, config: Any, total_steps: int, groups: Optional[list] = None) -> dict:
    """Optimiser plus a per-step LR schedule.

    ``groups`` (``[(params, lr multiplier)]``) gives discriminative LRs and may hold parameters
    that are still frozen (gradual unfreezing): they join the updates once they get gradients.
    """
    if groups is None:
        groups = [([p for p in model.parameters() if p.requires_grad], 1.0)]
    param_groups = []
    for params, mult in groups:
        # No weight decay on biases and normalisation scales (1-D tensors): decaying them only hurts.
        for chunk, decay in (([p for p in params if p.ndim > 1], config.weight_decay), ([p for p in params if p.ndim <= 1], 0.0)):
            if chunk:
                param_groups.append({"params": chunk, "weight_decay": decay, "lr": config.lr * mult})
    if not param_groups:
        raise TlearnError("nothing to train: every parameter is frozen")
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(param_groups, lr=config.lr, momentum=config.momentum)
    elif config.optimizer == "adam":
        optimizer = torch.optim.Adam(param_groups, lr=config.lr)
    else:
        optimizer = torch.optim.AdamW(param_groups, lr=config.lr)
    total_steps = max(1, int(total_steps))
    if config.scheduler == "none":
        return {"optimizer": optimizer}
    if config.scheduler == "onecycle":
        max_lr = [g["lr"] for g in param_groups]
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_with_warmup(step, total_steps))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class GradualUnfreeze(pl.Callback):
    """Keeps the backbone frozen for the first ``unfreeze_at`` epochs, then applies ``target``.

    The check runs at the start of every epoch, so a run resumed after the milestone unfreezes
    again straight away instead of re-freezing (the optimiser already holds every parameter).
    """

    def __init__(self, model: nn.Module, target: str, unfreeze_at: int):
        self.model = model
        self.target = target
        self.unfreeze_at = unfreeze_at

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        frozen = self.model.frozen_stages == self.model.backbone.stages
        if trainer.current_epoch >= self.unfreeze_at and frozen:
            self.model.freeze(self.target)
            self.model.train()


def cosine_with_warmup(step: int, total: int, warmup_fraction: float = 0.05) -> float:
    """LR multiplier: linear warm-up over the first 5 % of steps, then cosine decay to zero."""
    warmup = max(1, int(total * warmup_fraction))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class EpochHistory(pl.Callback):
    """Per-epoch metrics rows, plus the random state a resumed run needs to continue exactly.

    Its ``state_dict`` goes into every Lightning checkpoint: the rows so far and the states of the
    global torch RNG (dropout), the augmentation generator and the shuffling generator. A run
    resumed from ``last.ckpt`` therefore draws the same batches and augmentations as one that
    was never interrupted.
    """

    def __init__(self, on_epoch: Optional[Any] = None, generators: Optional[dict[str, torch.Generator]] = None):
        self.rows: list[dict[str, float]] = []
        self.on_epoch = on_epoch
        self.generators = generators or {}
        self._start = 0.0

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
        if self.on_epoch is not None and trainer.is_global_zero:
            self.on_epoch(self.rows)

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
