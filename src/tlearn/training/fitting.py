"""The fit phase of a :class:`~.run.Run`: the head loop on cached features, Lightning for the rest."""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Optional

import torch

from ..config import FreezeSpec
from ..models.depthwise import small_map_depthwise
from .checkpoints import ConstantStateSlimmer
from .head_loop import HeadLoopSettings, lightning_needed, train_head
from .optim import OptimSettings
from .outcome import TrainingOutcome
from .trainer import build_trainer, quiet_lightning, run_trainer

if TYPE_CHECKING:
    from .run import Run


def fit_run(run: Run, callbacks: list, max_epochs: Optional[int] = None) -> TrainingOutcome:
    """Train ``run``'s feed: a head alone on cached features in the head loop, anything else with
    Lightning (``callbacks`` and ``max_epochs`` apply there; any callback sends a run to Lightning).
    ``max_epochs``: the most epochs a callback may let the run go on for (default ``epochs``)."""
    if lightning_needed(run.config, run.feed, run.resume_from, callbacks) is None:
        # No checkpoints: --resume on this directory starts the run again (see pipeline.resume).
        run.write_state({"complete": False, "resumable": False})
        settings = HeadLoopSettings.of(run.config)
        history = run.directory / "metrics.csv"
        return train_head(settings, run.feed, history, run.device, run.loss_terms().class_weights)
    return _fit_with_lightning(run, callbacks, max_epochs)


def build_learner(run: Run):
    """The LightningModule of ``run``, and the callbacks of its schedule (gradual unfreezing,
    progressive resizing)."""
    from .callbacks import GradualUnfreeze, ProgressiveResize
    from .module import TransferLearner

    config, feed = run.config, run.feed
    callbacks, groups = [], None
    if config.schedule == "gradual":
        # The optimiser gets the final trainable set with per-stage LRs; then the backbone is
        # frozen until the milestone.
        groups = run.model.stage_groups(config.lr_ratio)
        run.model.freeze(FreezeSpec("backbone"))
        callbacks.append(GradualUnfreeze(run.model, config.freeze, config.unfreeze_at))
    if config.resize_from and feed.preprocessor is not None:
        callbacks.append(ProgressiveResize(feed.preprocessor, config.resize_from))
    learner = TransferLearner(
        feed.module,
        feed.preprocessor,
        OptimSettings.of(config),
        run.loss_terms(),
        groups,
        schedule_epochs=config.epochs,
    )
    return learner, callbacks


def _fit_with_lightning(run: Run, callbacks: list, max_epochs: Optional[int]) -> TrainingOutcome:
    from .callbacks import EpochHistory

    config, feed = run.config, run.feed
    if config.compile:
        feed.module.compile()  # in place: parameter names and the saved state dict stay the same
    history = EpochHistory(feed.generators())
    learner, schedule_callbacks = build_learner(run)
    threads = torch.get_num_threads()  # Lightning lowers it per DDP process on the CPU
    try:
        with warnings.catch_warnings():
            quiet_lightning()
            every = [history, *schedule_callbacks, *callbacks]
            trainer = build_trainer(config, run.directory, run.device, every, max_epochs=max_epochs)
            started = time.perf_counter()
            checkpoint = str(run.resume_from) if run.resume_from else None
            # torch.compile traces the ordinary convolutions; the custom backward is for eager CPU steps.
            with small_map_depthwise(feed.module, enabled=not config.compile):
                interrupted = run_trainer(trainer, learner, feed.train_loader, feed.val_loader, checkpoint)
    finally:
        torch.set_num_threads(threads)
    stopper = trainer.early_stopping_callback
    return TrainingOutcome(
        history.rows,
        interrupted,
        time.perf_counter() - started,
        restore_best=_best_checkpoint(trainer, learner),
        stopped_early=bool(stopper is not None and stopper.stopped_epoch),
        main=trainer.is_global_zero,
        processes=trainer.world_size,
        loggers=trainer.loggers,
    )


def _best_checkpoint(trainer, learner):
    """What loads the best validation epoch's checkpoint into ``learner`` (None without validation)."""
    paths = [cb.best_model_path for cb in trainer.checkpoint_callbacks if cb.monitor == "val_loss"]
    if not paths or not paths[0]:
        return None

    def restore() -> int:
        checkpoint = torch.load(paths[0], map_location="cpu", weights_only=True)
        ConstantStateSlimmer.refill(learner, checkpoint)
        learner.load_state_dict(checkpoint["state_dict"])
        return int(checkpoint["epoch"]) + 1

    return restore
