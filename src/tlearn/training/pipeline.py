"""``tlearn.train(config)``: the whole pipeline from a config to a finished run directory."""

from __future__ import annotations

import errno
import os
import time
import warnings
from pathlib import Path
from typing import Optional

import torch

from ..config import FreezeSpec, TrainConfig, config_to_yaml, make_config, read_yaml
from ..data.augment import BatchPreprocessor, batch_mix, inverse_frequency_weights
from ..errors import RunError, TrainingInterrupted, one_line
from ..fileio import atomic_write_json, atomic_write_text
from ..inference import batched_inference
from ..models.depthwise import small_map_depthwise
from ..runs.directory import RUN_FILES, RunResult, new_run_dir, run_metrics
from ..runs.metrics import classification_metrics
from ..runs.plots import plot_confusion_matrix, plot_curves
from ..runs.report import write_report
from ..runs.spec import ModelSpec, save_model
from ..runtime import autocast_dtype, machine, seconds_spent
from .cache import WHOLE_BACKBONE
from .checkpoints import ConstantStateSlimmer
from .distributed import (
    RUN_DIR_ENV,
    check_distributed,
    follower_run_dir,
    launch_environment,
    launch_rank,
    share_run_dir,
)
from .loggers import check_packages, log_final
from .optim import OptimSettings
from .setup import FitInputs, Fitted, Prepared, fit_inputs, prepare
from .trainer import build_trainer, fit, quiet_lightning


def train(config: TrainConfig, resume_from: Optional[Path] = None, overwrite: bool = False) -> Optional[RunResult]:
    """Train, evaluate on the test split and write the run directory; returns a :class:`RunResult`.

    ``resume_from``: a Lightning checkpoint of this run (see :func:`resume`) to continue from.
    ``overwrite``: replace a run already in ``config.out`` (else such a directory is refused).
    Under DDP every rank calls this; rank 0 evaluates, writes and returns the result, the other
    ranks return ``None`` once training ends.
    """
    with launch_environment():
        try:
            return _train(config, resume_from, overwrite)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise RunError(_disk_full_message(resume_from)) from None


def resume(run_dir: str | Path) -> RunResult:
    """Continue an interrupted run from its last finished epoch, with its own saved config.

    A run that trained only a head on cached features keeps no checkpoint (see
    :mod:`.head_fit`): it starts again in its own directory, its features read from the cache.
    """
    run_dir = Path(run_dir)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if not (run_dir / "config.yaml").is_file():
        raise RunError(f"cannot resume {run_dir}: not a tlearn run directory (no config.yaml)")
    config = make_config({**read_yaml(run_dir / "config.yaml"), "out": str(run_dir)}, str(run_dir / "config.yaml"))
    if not checkpoint.is_file():
        if run_metrics(run_dir).get("resumable") is False:
            return train(config, overwrite=True)
        raise RunError(
            f"cannot resume {run_dir}: no checkpoint yet (it stopped before finishing an epoch); start it again with "
            f"tlearn train --config {run_dir / 'config.yaml'} --out {run_dir} --overwrite"
        )
    try:  # refuse anything but plain tensors and containers before Lightning touches the file
        torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    except Exception as err:
        raise RunError(f"refusing to load {checkpoint}: not a plain tensor checkpoint ({one_line(err, 160)})") from None
    return train(config, resume_from=checkpoint)


def _disk_full_message(resume_from: Optional[Path]) -> str:
    run_dir = resume_from.parent.parent if resume_from else os.environ.get(RUN_DIR_ENV)
    advice = "free some space or write runs to another disk with --out"
    if run_dir and (Path(run_dir) / "checkpoints" / "last.ckpt").is_file():
        return (
            f"no space left on device while writing {run_dir}: {advice}, "
            f"then resume with: tlearn train --resume {run_dir}"
        )
    return (
        f"no space left on device{f' while writing {run_dir}' if run_dir else ''}: {advice}, then start the run again"
    )


def _fit_to_budget(config: TrainConfig, p: Prepared, fit_in: FitInputs, run_dir: Path, started: float):
    """The run fitted to ``--time-budget``: its epochs and, if too few fit, its high-resolution
    stages frozen and then a smaller image size (for each, the run is prepared afresh). The config
    is saved with plain ``epochs``/``freeze``/``image_size``, so it reproduces the run and a resume
    does not fit again. Returns config, prepared run, inputs, fit."""
    from .budget import fit_epochs, lighter_freeze, refit, smaller_size

    clock = lambda: seconds_spent(started)  # noqa: E731
    budget = fit_epochs(config, p, fit_in, clock)
    freeze = lighter_freeze(config, p, fit_in, budget)
    if freeze is not None:
        # Freezing always shortens a step (less backward); it is not compared with the timing above,
        # whose noise on a shared CPU is as large as the gain. The test evaluation runs the whole
        # model either way, so its timing is kept.
        words = f"{budget.epochs} epoch(s) fit with {_frozen(config.freeze)} frozen; freezing {_frozen(freeze)}"
        print(f"Time budget: {words} (the high-resolution stages)", flush=True)
        config = config.with_changes(freeze=freeze)
        p = prepare(config)
        fit_in = fit_inputs(config, p)
        budget = fit_epochs(config, p, fit_in, clock, per_example=budget.example_seconds)
    smaller = smaller_size(config, p, fit_in, budget, restart_seconds=time.perf_counter() - started)
    if smaller is not None:
        size = smaller.image_size
        print(f"Time budget: {budget.epochs} epoch(s) fit at {budget.image_size} px; training at {size} px", flush=True)
        config = config.with_changes(image_size=size)
        p = prepare(config)
        fit_in = fit_inputs(config, p)
        budget = refit(config, p, fit_in, smaller, clock())
    print(budget.summary(), flush=True)
    config = config.with_changes(epochs=budget.epochs, time_budget=None)
    _save_config(run_dir, config)
    return config, p, fit_in, budget


def _frozen(spec: FreezeSpec) -> str:
    return {"none": "nothing", "backbone": "the backbone"}.get(spec.kind, f"the stem to {spec.stage}")


def _budget_keeper(config: TrainConfig, budget, run_dir: Path, started: float):
    """Re-fits the epochs after each epoch; each change is saved in config.yaml, so a resume agrees."""
    from .budget import BudgetKeeper

    return BudgetKeeper(
        budget, lambda: seconds_spent(started), lambda epochs: _save_config(run_dir, config.with_changes(epochs=epochs))
    )


def _save_config(run_dir: Path, config: TrainConfig) -> None:
    """config.yaml: the run's settings without its output folder, so that it reproduces the run anywhere."""
    atomic_write_text(run_dir / "config.yaml", config_to_yaml(config.with_changes(out=None)))


def _start_run(config: TrainConfig, main: bool, resuming: bool, overwrite: bool) -> Path:
    """Rank 0 creates the run directory and marks it incomplete; other ranks only learn its name."""
    if not main:
        return follower_run_dir(config)
    run_dir = Path(config.out) if resuming else new_run_dir(config.out, config.backbone, overwrite)
    _save_config(run_dir, config)
    atomic_write_json(run_dir / "metrics.json", {"complete": False})
    share_run_dir(run_dir)
    return run_dir


def _learner(config: TrainConfig, p: Prepared, fit_in: FitInputs):
    """The LightningModule, and the callbacks of the schedule (gradual unfreezing, progressive resizing)."""
    from .callbacks import GradualUnfreeze, ProgressiveResize
    from .module import TransferLearner

    callbacks, groups = [], None
    if config.schedule == "gradual":
        # The optimiser gets the final trainable set with per-stage LRs; then the backbone is
        # frozen until the milestone.
        groups = p.model.stage_groups(config.lr_ratio)
        p.model.freeze(FreezeSpec("backbone"))
        callbacks.append(GradualUnfreeze(p.model, config.freeze, config.unfreeze_at))
    if config.resize_from and fit_in.preprocessor is not None:
        callbacks.append(ProgressiveResize(fit_in.preprocessor, config.resize_from))
    learner = TransferLearner(
        fit_in.module,
        fit_in.preprocessor,
        OptimSettings.of(config),
        config.label_smoothing,
        groups,
        class_weights=_class_weights(config, p),
        mix=batch_mix(config.mixup, config.cutmix, len(p.splits.classes)),
    )
    return learner, callbacks


def _class_weights(config: TrainConfig, p: Prepared) -> Optional[torch.Tensor]:
    """``--class-weights auto``: each class's loss weighted by its inverse frequency in the training split."""
    if config.class_weights != "auto":
        return None
    return inverse_frequency_weights(p.splits.train.labels, len(p.splits.classes))


def _fit(
    config: TrainConfig, p: Prepared, fit_in: FitInputs, run_dir: Path, resume_from: Optional[Path], extra=()
) -> Fitted:
    """Train: a head alone on cached features in :mod:`.head_fit`'s loop, anything else with Lightning."""
    from .head_fit import fit_head, lightning_needed

    if lightning_needed(config, fit_in, resume_from, extra) is None:
        # No checkpoints: --resume on this directory starts the run again (see resume()).
        atomic_write_json(run_dir / "metrics.json", {"complete": False, "resumable": False})
        return fit_head(config, fit_in, run_dir, p.device, _class_weights(config, p))
    return _fit_with_lightning(config, p, fit_in, run_dir, resume_from, extra)


def _fit_with_lightning(
    config: TrainConfig, p: Prepared, fit_in: FitInputs, run_dir: Path, resume_from: Optional[Path], extra=()
) -> Fitted:
    from .callbacks import EpochHistory

    if config.compile:
        fit_in.module.compile()  # in place: parameter names and the saved state dict stay the same
    history = EpochHistory(fit_in.generators())
    learner, callbacks = _learner(config, p, fit_in)
    threads = torch.get_num_threads()  # Lightning lowers it per DDP process on the CPU
    try:
        with warnings.catch_warnings():
            quiet_lightning()
            trainer = build_trainer(config, run_dir, p.device, [history, *callbacks, *extra])
            started = time.perf_counter()
            ckpt = str(resume_from) if resume_from else None
            # torch.compile traces the ordinary convolutions; the custom backward is for eager CPU steps.
            with small_map_depthwise(fit_in.module, enabled=not config.compile):
                interrupted = fit(trainer, learner, fit_in.train_loader, fit_in.val_loader, ckpt)
    finally:
        torch.set_num_threads(threads)
    stopper = trainer.early_stopping_callback
    return Fitted(
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


def _keep_best(config: TrainConfig, fitted: Fitted) -> dict:
    """Load the best validation epoch's weights (``--keep best``); which epoch the model is from."""
    outcome = {"keep": "last", "model_epoch": len(fitted.rows), "stopped_early": fitted.stopped_early}
    if config.ema:  # Lightning has put the averaged weights into the model at the end of training
        return {**outcome, "keep": "ema"}
    if config.keep != "best" or fitted.restore_best is None:  # without validation there is no best epoch
        return outcome
    return {**outcome, "keep": "best", "model_epoch": fitted.restore_best()}


def _train(config: TrainConfig, resume_from: Optional[Path], overwrite: bool) -> Optional[RunResult]:
    started = time.perf_counter()
    check_distributed(config)
    check_packages(config.loggers)  # a missing tracker package fails before any data is read
    main = launch_rank(config) == 0
    prepared = prepare(config)
    run_dir = _start_run(config, main, resume_from is not None, overwrite)
    fit_in = fit_inputs(config, prepared)
    budget = keeper = None
    if config.time_budget and resume_from is None:
        config, prepared, fit_in, budget = _fit_to_budget(config, prepared, fit_in, run_dir, started)
        keeper = _budget_keeper(config, budget, run_dir, started)
    fitted = _fit(config, prepared, fit_in, run_dir, resume_from, [keeper.callback()] if keeper else [])
    if keeper is not None and keeper.changes:
        config = config.with_changes(epochs=len(fitted.rows))
    if not fitted.main:
        return None
    if fitted.interrupted:
        done = len(fitted.rows)
        state = {"complete": False, "interrupted": True, "epochs_done": done, "resumable": fitted.resumable}
        atomic_write_json(run_dir / "metrics.json", state)
        again = "" if fitted.resumable else " (it trains the head again, on the cached features)"
        raise TrainingInterrupted(
            f"interrupted after {done} finished epoch(s); resume with: tlearn train --resume {run_dir}{again}"
        )
    kept = _keep_best(config, fitted)
    eval_started = time.perf_counter()
    test, test_logits = _evaluate(config, prepared, fit_in)
    metrics = {**_final_metrics(config, prepared, fitted.rows, test), **kept}
    metrics.update(train_seconds=round(fitted.seconds, 3), eval_seconds=round(time.perf_counter() - eval_started, 3))
    metrics.update(feature_cache=fit_in.cache, resumed=resume_from is not None, processes=fitted.processes)
    metrics["trainer"] = fitted.trainer
    metrics["time_budget"] = {**budget.to_dict(), "refits": keeper.changes} if budget is not None else None
    _write_outputs(run_dir, config, prepared, fitted.rows, test)
    metrics["total_seconds"] = round(time.perf_counter() - started, 3)
    write_report(run_dir, config.model_dump(), metrics, prepared.splits.test, test_logits)
    metrics["complete"] = True
    atomic_write_json(run_dir / "metrics.json", metrics)  # last: `complete` marks a finished run
    log_final(fitted.loggers, metrics, run_dir)  # test scores and artifacts to TensorBoard / MLflow
    return RunResult(run_dir, metrics, {name: run_dir / name for name in RUN_FILES})


def _evaluate(config: TrainConfig, p: Prepared, fit_in: FitInputs) -> tuple[dict, torch.Tensor]:
    """Test metrics and logits; with ``--tta N`` also the single-view accuracy, for comparison."""
    module, source = fit_in.module, fit_in.test_inputs
    preprocessor = BatchPreprocessor(p.prep) if fit_in.preprocessor is not None else None
    if config.tta > 1 and preprocessor is None:  # shifted views are not in the cache: run the whole model
        module, source, preprocessor = p.model, p.splits.test, BatchPreprocessor(p.prep)
    # Lightning moves the model back to the CPU when fit ends: evaluate where it trained.
    module.to(torch.device(p.device))
    # On cached features of the whole backbone only the head runs: no BatchNorm of it to fold, and a
    # folded copy would deep-copy the unused backbone too.
    head_only = module is fit_in.module and fit_in.cache.get("boundary") == WHOLE_BACKBONE
    logits, single = batched_inference(
        module,
        preprocessor,
        source,
        None,
        p.device,
        autocast_dtype(config.precision),
        tta=config.tta,
        fold=not head_only,
        single_view=True,
    )
    labels, classes = p.splits.test.labels, p.splits.classes
    test = classification_metrics(labels, logits, classes)
    if config.tta > 1:  # the unshifted view came out of the same pass
        test["accuracy_single_view"] = classification_metrics(labels, single, classes)["accuracy"]
    fit_in.module.cpu()  # holds the model on the cached path too
    return test, logits


def _write_outputs(run_dir: Path, config: TrainConfig, p: Prepared, rows: list[dict], test: dict) -> None:
    save_model(run_dir, p.model, ModelSpec.from_config(config, p.prep, p.splits.classes))
    plot_curves(rows, "acc", run_dir / "accuracy.png", f"{config.backbone}: accuracy")
    plot_curves(rows, "loss", run_dir / "loss.png", f"{config.backbone}: loss")
    plot_confusion_matrix(
        test["confusion_matrix"],
        p.splits.classes,
        run_dir / "confusion_matrix.png",
        f"test set ({test['samples']} images): {100 * test['accuracy']:.2f}%",
    )


def _final_metrics(config: TrainConfig, p: Prepared, rows: list[dict], test: dict) -> dict:
    last = rows[-1] if rows else {}
    splits = p.splits
    return {
        "test_accuracy": test["accuracy"],
        "balanced_accuracy": test["balanced_accuracy"],
        "test_loss": test["loss"],
        "test_samples": test["samples"],
        "tta_views": config.tta,
        "test_accuracy_single_view": test.get("accuracy_single_view", test["accuracy"]),
        "train_samples": len(splits.train),
        "skipped_files": len(splits.skipped),
        "skipped_examples": splits.skipped[:5],
        "val_source": splits.val_source,
        "val_samples": len(splits.val) if splits.val is not None else 0,
        "final_val_accuracy": last.get("val_acc"),
        "final_train_accuracy": last.get("train_acc"),
        "epochs": len(rows),
        "backbone": config.backbone,
        "weights": config.weights,
        "freeze": str(config.freeze),
        "image_size": p.prep.image_size,
        "device": p.device,
        "machine": machine(p.device),
        "seed": config.seed,
        "macro_f1": test["macro_f1"],
        "per_class": test["per_class"],
        "confusion_matrix": test["confusion_matrix"],
        "history": rows,
    }
