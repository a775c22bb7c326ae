"""The LightningModule: trains a transfer model on uint8 image batches (or cached activations).

Batches arrive as uint8 images; the module preprocesses them on the device (resize, augment,
normalise) right before the forward pass, so the data loader stays trivial and cheap.
"""

from __future__ import annotations

from typing import Optional

import lightning.pytorch as pl
import torch
from torch import nn

from ..data.augment import BatchPreprocessor
from .checkpoints import ConstantStateSlimmer
from .objective import LossTerms, batch_loss, batch_sums, non_finite_loss
from .optim import OptimSettings, make_optimizer, reschedule


class TransferLearner(pl.LightningModule):
    """Trains ``model`` (a :class:`~tlearn.models.transfer.TransferModel`, or the part above a cache boundary)."""

    def __init__(
        self,
        model: nn.Module,
        preprocessor: Optional[BatchPreprocessor],
        optim: OptimSettings,
        loss: Optional[LossTerms] = None,
        groups: Optional[list] = None,
        schedule_epochs: Optional[int] = None,
    ):
        super().__init__()
        self.model = model
        self.preprocessor = preprocessor
        self.optim = optim
        loss = loss or LossTerms()
        self.label_smoothing = loss.label_smoothing
        self.groups = groups  # [(params, lr multiplier)]; None = every trainable parameter at --lr
        self.mix = loss.mix  # MixUp/CutMix on the preprocessed training batch: labels become class probabilities
        # A buffer moves with the module (to the GPU) but is no parameter; not saved, it is rebuilt.
        self.register_buffer("class_weights", loss.class_weights, persistent=False)
        # The epochs the LR schedule spans (default: the trainer's max_epochs); see reschedule().
        self.schedule_epochs = schedule_epochs
        self._slimmer = ConstantStateSlimmer()
        self._sums = {"train": torch.zeros(3), "val": torch.zeros(3)}  # this epoch's loss × n, correct, n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch, train: bool):
        return batch_loss(
            self.model,
            batch,
            train,
            self.preprocessor,
            self.mix,
            self.label_smoothing,
            self.class_weights,
        )

    def training_step(self, batch, batch_idx: int):
        loss, acc, n = self._step(batch, train=True)
        bad = not torch.isfinite(loss)
        if self.trainer.world_size > 1:  # every rank stops together, or the others wait in all-reduce
            bad = self.trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            value = loss.item() if not torch.isfinite(loss) else "non-finite in another process"
            raise non_finite_loss(value, self.current_epoch + 1, batch_idx + 1)
        self._add(loss, acc, n, "train", last=batch_idx + 1 == self.trainer.num_training_batches)
        return loss

    def validation_step(self, batch, batch_idx: int):
        loss, acc, n = self._step(batch, train=False)
        self._add(loss, acc, n, "val", last=batch_idx + 1 == sum(self.trainer.num_val_batches))

    def on_train_epoch_start(self) -> None:
        self._sums["train"] = torch.zeros(3)

    def on_validation_epoch_start(self) -> None:
        self._sums["val"] = torch.zeros(3)

    def _add(self, loss: torch.Tensor, acc: torch.Tensor, n: int, split: str, last: bool) -> None:
        """Adds a batch to the epoch's figures, and logs them from the epoch's last batch: Lightning's
        ``self.log`` costs on the CPU about as much a call as a whole step of a cached head.

        sync_dist: under DDP the figures average over every process (a no-op alone). logger=False:
        the epoch history logs one row per epoch to the loggers itself.
        """
        batch = batch_sums(loss, acc, n)
        self._sums[split] = self._sums[split].to(batch.device) + batch
        if last:
            loss_sum, correct, count = self._sums[split]
            self.log(f"{split}_loss", loss_sum / count, on_step=False, on_epoch=True, sync_dist=True, logger=False)
            self.log(
                f"{split}_acc",
                correct / count,
                on_step=False,
                on_epoch=True,
                prog_bar=True,
                sync_dist=True,
                logger=False,
            )

    @property
    def planned_epochs(self) -> int:
        """The epochs the run is planned to train (and its LR schedule spans)."""
        return int(self.schedule_epochs or self.trainer.max_epochs)

    def _schedule_steps(self, epochs: int) -> float:
        total, most = self.trainer.estimated_stepping_batches, self.trainer.max_epochs
        return total if epochs == most else total / most * epochs

    def configure_optimizers(self):
        return make_optimizer(self.model, self.optim, self._schedule_steps(self.planned_epochs), self.groups)

    def reschedule(self, epochs: int) -> bool:
        """Plan ``epochs`` epochs from now on: the LR schedule is stretched or shrunk to end with
        them. False (and nothing changed) when a schedule cannot follow (one-cycle's phases are
        fixed when it is built)."""
        schedules = [config.scheduler for config in self.trainer.lr_scheduler_configs]
        if not reschedule(schedules, max(1, round(self._schedule_steps(epochs)))):
            return False
        self.schedule_epochs = epochs
        return True

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self._slimmer.slim(self, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._slimmer.refill(self, checkpoint)
