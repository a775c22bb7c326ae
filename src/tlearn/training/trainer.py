"""Lightning's Trainer as tlearn uses it: checkpoints, the loggers, quiet start-up, Ctrl-C."""

from __future__ import annotations

import logging
import signal
import warnings
from pathlib import Path
from typing import Optional

from ..config import TrainConfig
from ..errors import TlearnError, one_line
from .distributed import trainer_options
from .loggers import build_loggers

ACCELERATORS = {"cpu": "cpu", "cuda": "gpu", "mps": "mps"}


def quiet_lightning() -> None:
    """Keep Lightning's start-up chatter (GPU/TPU availability, tips) off the console."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")  # resuming into its own run dir
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # frozen BatchNorm, on purpose
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*")
    warnings.filterwarnings("ignore", message=".*have no `val_dataloader`.*")  # --val-source none, on purpose


def build_trainer(
    config: TrainConfig,
    run_dir: Path,
    device: str,
    callbacks: list,
    log_epochs: bool = True,
    max_epochs: Optional[int] = None,
):
    """A ``pl.Trainer`` writing checkpoints (and, with ``log_epochs``, ``metrics.csv``) in ``run_dir``.
    ``max_epochs``: room for more than ``config.epochs``, for a callback that decides when to stop."""
    import lightning.pytorch as pl
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from .checkpoints.writer import DirectCheckpointIO

    # The epoch history logs one row per epoch to these: metrics.csv, plus the --logger trackers.
    loggers = build_loggers(config, run_dir) if log_epochs else False
    try:
        return pl.Trainer(
            accelerator=ACCELERATORS[device],
            **trainer_options(config, device),
            precision=config.precision,
            max_epochs=max(config.epochs, max_epochs or 0),
            gradient_clip_val=config.grad_clip,
            accumulate_grad_batches=config.accumulate,
            logger=loggers,
            callbacks=[*_epoch_callbacks(config, run_dir / "checkpoints"), *callbacks],
            plugins=[DirectCheckpointIO()],
            enable_progress_bar=config.progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            deterministic=False,
        )
    except MisconfigurationException as err:  # e.g. --devices 4 on a machine with 2 GPUs
        raise TlearnError(f"cannot set up training on {config.devices} {device} device(s): {one_line(err)}") from None


def _epoch_callbacks(config: TrainConfig, folder: Path) -> list:
    """The checkpoints every run writes in ``folder``, plus --ema and --early-stopping."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    # last.ckpt carries everything a resume needs (optimiser, schedule, RNG); best.ckpt only the
    # weights of the best validation epoch (lowest validation loss), which is all it is for.
    # (Lightning's save_last only writes beside a top-k save, so "last" is a top-1 of the latest epoch.)
    callbacks = [ModelCheckpoint(dirpath=folder, filename="last", save_top_k=1, enable_version_counter=False)]
    if config.val_source != "none":
        best = {"monitor": "val_loss", "mode": "min", "save_top_k": 1, "save_weights_only": True}
        callbacks.append(ModelCheckpoint(dirpath=folder, filename="best", enable_version_counter=False, **best))
    if config.ema:  # averaged after every step; validation and the final model use the average
        from lightning.pytorch.callbacks import EMAWeightAveraging

        callbacks.append(EMAWeightAveraging(decay=config.ema))
    if config.early_stopping:
        from lightning.pytorch.callbacks import EarlyStopping

        callbacks.append(EarlyStopping(monitor="val_loss", mode="min", patience=config.early_stopping))
    return callbacks


def run_trainer(trainer, learner, train_loader, val_loader, ckpt: Optional[str]) -> bool:
    """Run ``trainer.fit``; True when Ctrl-C stopped it.

    Lightning answers Ctrl-C by shutting down gracefully and calling ``sys.exit(1)`` with SIGINT
    ignored; tlearn turns that back into a resumable stop and restores the SIGINT handler.
    """
    handler = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(learner, train_loader, val_loader, ckpt_path=ckpt, weights_only=True)
    except SystemExit:
        if not trainer.interrupted:
            raise
    finally:
        signal.signal(signal.SIGINT, handler)
    return trainer.interrupted
