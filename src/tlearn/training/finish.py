"""The finish phase of a :class:`~.run.Run`: keep the chosen epoch's weights, evaluate on the test
split, and write the model, plots, report and ``metrics.json`` (last: it marks a finished run)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from ..config import TrainConfig
from ..data.augment import BatchPreprocessor
from ..inference.engine import batched_inference
from ..runs.directory import RUN_FILES, RunResult
from ..runs.metrics import classification_metrics
from ..runs.plots import plot_confusion_matrix, plot_curves
from ..runs.record import RunRecord
from ..runs.report import write_report
from ..runs.spec import ModelSpec, save_model
from ..runtime import autocast_dtype, machine
from .loggers import log_final
from .outcome import TrainingOutcome

if TYPE_CHECKING:
    from .run import Run


def finish_run(run: Run, outcome: TrainingOutcome, extra: dict) -> RunResult:
    """Evaluate ``run`` after ``outcome`` and write its outputs; ``extra`` joins ``metrics.json``."""
    kept = kept_epoch(run.config, outcome)
    eval_started = time.perf_counter()
    test, test_logits = evaluate(run)
    eval_seconds = time.perf_counter() - eval_started
    _write_outputs(run, outcome.rows, test)
    record = final_record(run, outcome, test, kept, eval_seconds, extra)
    write_report(run.directory, run.config.model_dump(), record, run.splits.test, test_logits)
    record.write(run.directory)  # last: a complete record marks a finished run
    log_final(outcome.loggers, record, run.directory)  # test scores and artifacts to TensorBoard / MLflow
    return RunResult(run.directory, record, {name: run.directory / name for name in RUN_FILES})


def kept_epoch(config: TrainConfig, outcome: TrainingOutcome) -> tuple[str, int]:
    """Load the best validation epoch's weights (``--keep best``); which weights the model is
    (``last``, ``best`` or ``ema``) and the epoch they are from."""
    if config.ema:  # Lightning has put the averaged weights into the model at the end of training
        return "ema", outcome.epochs
    if config.keep != "best" or outcome.restore_best is None:  # without validation there is no best epoch
        return "last", outcome.epochs
    return "best", outcome.restore_best()


def evaluate(run: Run) -> tuple[dict, torch.Tensor]:
    """Test metrics and logits; with ``--tta N`` also the single-view accuracy, for comparison."""
    config, feed = run.config, run.feed
    module, source = feed.module, feed.test_inputs
    preprocessor = BatchPreprocessor(run.preprocessing) if feed.preprocessor is not None else None
    if config.tta > 1 and preprocessor is None:  # shifted views are not in the cache: run the whole model
        module, source, preprocessor = run.model, run.splits.test, BatchPreprocessor(run.preprocessing)
    # Lightning moves the model back to the CPU when fit ends: evaluate where it trained.
    module.to(torch.device(run.device))
    # On cached features of the whole backbone only the head runs: no BatchNorm of it to fold, and a
    # folded copy would deep-copy the unused backbone too.
    head_only = module is feed.module and feed.cache.whole_backbone
    logits, single = batched_inference(
        module,
        preprocessor,
        source,
        None,
        run.device,
        autocast_dtype(config.precision),
        tta=config.tta,
        fold=not head_only,
        single_view=True,
    )
    labels, classes = run.splits.test.labels, run.splits.classes
    test = classification_metrics(labels, logits, classes)
    if config.tta > 1:  # the unshifted view came out of the same pass
        test["accuracy_single_view"] = classification_metrics(labels, single, classes)["accuracy"]
    feed.module.cpu()  # holds the model on the cached path too
    return test, logits


def _write_outputs(run: Run, rows: list[dict], test: dict) -> None:
    config, directory, classes = run.config, run.directory, run.splits.classes
    save_model(directory, run.model, ModelSpec.from_config(config, run.preprocessing, classes))
    plot_curves(rows, "acc", directory / "accuracy.png", f"{config.backbone}: accuracy")
    plot_curves(rows, "loss", directory / "loss.png", f"{config.backbone}: loss")
    plot_confusion_matrix(
        test["confusion_matrix"],
        classes,
        directory / "confusion_matrix.png",
        f"test set ({test['samples']} images): {100 * test['accuracy']:.2f}%",
    )


def final_record(
    run: Run, outcome: TrainingOutcome, test: dict, kept: tuple[str, int], eval_seconds: float, extra: dict
) -> RunRecord:
    """``metrics.json`` of the finished ``run``: ``test`` is the test split's figures, ``kept`` which
    weights the model is (:func:`kept_epoch`), ``extra`` more fields (``time_budget``)."""
    config, splits, rows = run.config, run.splits, outcome.rows
    last = rows[-1] if rows else {}
    keep, model_epoch = kept
    return RunRecord(
        test_accuracy=test["accuracy"],
        balanced_accuracy=test["balanced_accuracy"],
        test_loss=test["loss"],
        test_samples=test["samples"],
        tta_views=config.tta,
        test_accuracy_single_view=test.get("accuracy_single_view", test["accuracy"]),
        train_samples=len(splits.train),
        skipped_files=len(splits.skipped),
        skipped_examples=splits.skipped[:5],
        val_source=splits.val_source,
        val_samples=len(splits.val) if splits.val is not None else 0,
        final_val_accuracy=last.get("val_acc"),
        final_train_accuracy=last.get("train_acc"),
        epochs=len(rows),
        backbone=config.backbone,
        weights=config.weights,
        freeze=str(config.freeze),
        image_size=run.preprocessing.image_size,
        device=run.device,
        machine=machine(run.device),
        seed=config.seed,
        macro_f1=test["macro_f1"],
        per_class=test["per_class"],
        confusion_matrix=test["confusion_matrix"],
        history=rows,
        keep=keep,
        model_epoch=model_epoch,
        stopped_early=outcome.stopped_early,
        train_seconds=round(outcome.seconds, 3),
        eval_seconds=round(eval_seconds, 3),
        feature_cache=run.feed.cache.to_dict(),
        resumed=run.resume_from is not None,
        processes=outcome.processes,
        trainer=outcome.trainer,
        total_seconds=round(time.perf_counter() - run.started, 3),
        **extra,
    )
