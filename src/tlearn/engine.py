"""The Lightning side of training: the LightningModule, optimisers, schedules, epoch history.

Batches arrive as uint8 images; the module preprocesses them on the device (resize, augment,
normalise) right before the forward pass, so the data loader stays trivial and cheap.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any, Optional

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from .errors import TlearnError
from .model import is_frozen
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

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # A frozen backbone cannot change during the run, so writing it again every epoch only
        # costs time and disk (most of the epoch on cached features). The checkpoint keeps the
        # names and a digest of what it leaves out; resuming takes them from the rebuilt model.
        constant = sorted(k for k in constant_state(self) if k in checkpoint["state_dict"])
        if constant:
            if self._digest_of[0] != constant:
                self._digest_of = (constant, state_digest(self.state_dict(), constant))
            for key in constant:
                del checkpoint["state_dict"][key]
            checkpoint[CONSTANT_KEY] = {"keys": constant, "digest": self._digest_of[1]}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        left_out = checkpoint.get(CONSTANT_KEY)
        if not left_out:
            return
        own = self.state_dict()
        missing = [k for k in left_out["keys"] if k not in own]
        if missing or state_digest(own, left_out["keys"]) != left_out["digest"]:
            raise TlearnError("cannot resume: the frozen weights differ from those this run started with "
                              "(was the pretrained weights file replaced?); start a new run")
        checkpoint["state_dict"].update({k: own[k].detach().clone() for k in left_out["keys"]})

    _digest_of: tuple = (None, None)


CONSTANT_KEY = "tlearn_constant_state"


def constant_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """State-dict entries training leaves untouched: frozen parameters, and the running
    statistics of frozen BatchNorm layers (``TransferModel.train`` keeps those in eval mode)."""
    found = {}
    for prefix, child in module.named_modules():
        dot = f"{prefix}." if prefix else ""
        found.update({dot + name: p for name, p in child.named_parameters(recurse=False) if not p.requires_grad})
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and is_frozen(child):
            found.update({dot + name: b for name, b in child.named_buffers(recurse=False) if b is not None})
    return found


def state_digest(state: dict[str, torch.Tensor], keys: list[str]) -> str:
    """A digest of the named tensors' values, shapes and dtypes."""
    digest = hashlib.blake2b(digest_size=16)
    for key in keys:
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


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
