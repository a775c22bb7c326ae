"""``tlearn.train(config)``: the whole pipeline from a config to a finished run directory."""

from __future__ import annotations

import errno
import logging
import os
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .backbones import check_backbone_name, create_backbone
from .config import TrainConfig, config_to_yaml
from .data import DataSplits, EpochSubsetSampler, build_splits
from .distributed import (RUN_DIR_ENV, check_distributed, follower_run_dir, is_distributed, launch_environment,
                          launch_rank, local_rank, per_process_batch, share_run_dir, trainer_options)
from .evaluation import batched_inference, classification_metrics
from .features import CachePlan, TopModel, extract, plan_cache
from .model import TransferModel, build_model
from .report import misclassified_grid, write_report
from .reporting import plot_confusion_matrix, plot_curves, write_metrics_csv
from .runs import RunResult, new_run_dir, save_model
from .transforms import BatchPreprocessor, Preprocessing, make_preprocessing, randaugment_transform
from .errors import TlearnError
from .utils import atomic_write_json, atomic_write_text, resolve_device, seed_everything

ACCELERATORS = {"cpu": "cpu", "cuda": "gpu", "mps": "mps"}
RUN_FILES = ("config.yaml", "metrics.csv", "metrics.json", "accuracy.png", "loss.png", "confusion_matrix.png",
             "model.safetensors", "model.json", "report.html")
AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def prepare_model(config: TrainConfig, num_classes: int) -> tuple[TransferModel, Preprocessing]:
    """Backbone + head + freezing + preprocessing, exactly as ``config`` says."""
    backbone = create_backbone(config.backbone, config.weights, in_chans=config.in_chans)
    image_size = config.image_size or backbone.info.input_size
    prep = make_preprocessing(image_size, config.in_chans, config.normalize, backbone.info.mean, backbone.info.std)
    model = build_model(backbone, num_classes, config.head, image_size, config.in_chans, config.dropout, config.head_hidden)
    model.freeze(config.freeze)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, prep


def auto_workers(augment: str) -> int:
    """Worker processes only pay off for per-sample work (RandAugment); the rest is batched in-process.

    tlearn never changes torch's thread count, so ``torch.set_num_threads``/``OMP_NUM_THREADS`` hold.
    """
    if augment != "randaugment":
        return 0
    return min(4, max(0, (os.cpu_count() or 1) - 1))


def make_loaders(config: TrainConfig, splits: DataSplits) -> tuple[DataLoader, Optional[DataLoader]]:
    """Seeded shuffling for training; per-sample RandAugment runs in the dataset when asked for."""
    transform = randaugment_transform(config.seed) if config.augment == "randaugment" else None
    generator = torch.Generator().manual_seed(config.seed)
    workers = config.num_workers if config.num_workers is not None else auto_workers(config.augment)
    common = {"batch_size": per_process_batch(config), "num_workers": workers, "persistent_workers": workers > 0}
    train = DataLoader(splits.train.dataset(True, transform), shuffle=True, generator=generator, **common)
    val = DataLoader(splits.val.dataset(False), shuffle=False, **common) if splits.val is not None else None
    return train, val


def model_spec(config: TrainConfig, prep: Preprocessing, classes: list[str], data_channels: int = 1, crop_pct: Optional[float] = None) -> dict:
    """What ``runs.load_model`` needs to rebuild the network without the original config."""
    return {
        "format": "tlearn-model-v1",
        "backbone": config.backbone,
        "head": config.head,
        "head_hidden": config.head_hidden,
        "dropout": config.dropout,
        "classes": classes,
        "data_channels": data_channels,
        # Photos (folder/CSV data) are evaluated resize + centre-crop; tensor datasets plain resize.
        "eval_crop_pct": crop_pct,
        "preprocessing": prep.to_dict(),
    }


def _quiet_lightning() -> None:
    """Keep Lightning's start-up chatter (GPU/TPU availability, tips) off the console."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")  # resuming into its own run dir
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # frozen BatchNorm, on purpose
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*")
    warnings.filterwarnings("ignore", message=".*have no `val_dataloader`.*")  # --val-source none, on purpose


def _trainer(config: TrainConfig, run_dir: Path, device: str, callbacks: list):
    import lightning.pytorch as pl
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import ModelCheckpoint

    # last.ckpt carries everything a resume needs (optimiser, schedule, RNG); best.ckpt only the
    # weights of the best validation epoch, which is all it is for (a third of the disk for Adam).
    # (Lightning's save_last only writes beside a top-k save, so "last" is a top-1 of the latest epoch.)
    checkpoints = [ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", save_top_k=1, enable_version_counter=False)]
    if config.val_source != "none":
        checkpoints.append(ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor="val_acc",
                                           mode="max", save_top_k=1, save_weights_only=True,
                                           enable_version_counter=False))
    try:
        return pl.Trainer(
            accelerator=ACCELERATORS[device],
            **trainer_options(config, device),
            precision=config.precision,
            max_epochs=config.epochs,
            logger=False,
            callbacks=[*checkpoints, *callbacks],
            enable_progress_bar=config.progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            deterministic=False,
        )
    except MisconfigurationException as err:  # e.g. --devices 4 on a machine with 2 GPUs
        raise TlearnError(f"cannot set up training on {config.devices} {device} device(s): {str(err).splitlines()[0]}") from None


@dataclass
class FitInputs:
    """What Lightning trains and what the test set is fed as: raw images or cached activations."""

    module: nn.Module
    preprocessor: Optional[BatchPreprocessor]
    train_loader: DataLoader
    val_loader: Optional[DataLoader]
    test_inputs: object  # a split (images) or a tensor of cached activations
    cache: dict


def image_inputs(config: TrainConfig, splits: DataSplits, model: TransferModel, prep: Preprocessing, reason: str) -> FitInputs:
    """The plain path: every epoch runs the whole network on freshly preprocessed images."""
    train_loader, val_loader = make_loaders(config, splits)
    # Under DDP each rank draws its own augmentations (its shard of images differs anyway).
    preprocessor = BatchPreprocessor(prep, config.augment, config.seed + launch_rank(config))
    return FitInputs(model, preprocessor, train_loader, val_loader, splits.test, {"used": False, "reason": reason})


def cached_inputs(config: TrainConfig, splits: DataSplits, model: TransferModel, prep: Preprocessing, plan: CachePlan, device: str) -> FitInputs:
    """The cached path: the frozen part runs once per image; Lightning trains only the top."""
    model.to(torch.device(device))
    augment = BatchPreprocessor(prep, config.augment, config.seed) if plan.views > 1 or config.augment != "none" else None
    train = extract(model, prep, plan, splits.train, device, config.cache_dir, augment=augment)
    labels = splits.train.labels
    generator = torch.Generator().manual_seed(config.seed)
    if augment is not None:  # [views, N, …]: each epoch draws N of the N×views (image, view) pairs
        views = train.shape[0]
        dataset = TensorDataset(train.flatten(0, 1), labels.repeat(views))
        sampler = EpochSubsetSampler(len(dataset), len(labels), generator)
        train_loader = DataLoader(dataset, batch_size=per_process_batch(config), sampler=sampler)
    else:
        train_loader = DataLoader(TensorDataset(train, labels), batch_size=per_process_batch(config), shuffle=True, generator=generator)
    val_loader = None
    if splits.val is not None:
        val = extract(model, prep, plan, splits.val, device, config.cache_dir)
        # Validation only averages over samples, so its batch size changes no number; when only
        # the head is left to run, a large one saves most of the per-step loop overhead.
        val_batch = max(512, per_process_batch(config)) if plan.stage_index < 0 else per_process_batch(config)
        val_loader = DataLoader(TensorDataset(val, splits.val.labels), batch_size=val_batch)
    test = extract(model, prep, plan, splits.test, device, config.cache_dir)
    plan.runner = None  # the folded copy is no longer needed
    model.cpu()
    cache = {"used": True, "boundary": plan.boundary, "views": plan.views, "pooled": plan.pooled,
             "feature_shape": list(test.shape[1:]), "splits": plan.stats.get("splits", [])}
    return FitInputs(TopModel(model, plan.stage_index, config.channels_last), None, train_loader, val_loader, test, cache)


@dataclass
class Prepared:
    """Everything a run needs before training: device, data splits, model and preprocessing."""

    device: str
    splits: DataSplits
    model: TransferModel
    prep: Preprocessing
    config: TrainConfig  # with the resolved image size


def prepare(config: TrainConfig) -> Prepared:
    """Resolve the device, load the splits and build the model (shared by train and lr-find)."""
    device = resolve_device(config.device)
    if device == "cuda" and is_distributed(config):
        torch.cuda.set_device(local_rank())  # each rank extracts features on its own GPU, not all on cuda:0
    check_backbone_name(config.backbone)  # fail before reading any data
    seed_everything(config.seed)
    splits = build_splits(config)
    model, prep = prepare_model(config, len(splits.classes))
    for split in (splits.train, splits.val, splits.test):
        if split is not None:  # file-backed splits decode at the model's size, ImageNet-style
            split.configure(prep.image_size, model.backbone.info.crop_pct)
    return Prepared(device, splits, model, prep, config.model_copy(update={"image_size": prep.image_size}))


def fit_inputs(p: Prepared) -> FitInputs:
    """Cached activations when the frozen part allows it exactly, else the plain image path."""
    plan, reason = plan_cache(p.config, p.model)
    started = time.perf_counter()
    if plan:
        fit = cached_inputs(p.config, p.splits, p.model, p.prep, plan, p.device)
    else:
        fit = image_inputs(p.config, p.splits, p.model, p.prep, reason)
    fit.cache.update(reason=reason, seconds=round(time.perf_counter() - started, 3))
    return fit


def _fit(trainer, learner, fit: FitInputs, ckpt: Optional[str]) -> bool:
    """Run ``trainer.fit``; True when Ctrl-C stopped it.

    Lightning answers Ctrl-C by shutting down gracefully and calling ``sys.exit(1)`` with SIGINT
    ignored; tlearn turns that back into a resumable stop and restores the SIGINT handler.
    """
    handler = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(learner, fit.train_loader, fit.val_loader, ckpt_path=ckpt, weights_only=True)
    except SystemExit:
        if not trainer.interrupted:
            raise
    finally:
        signal.signal(signal.SIGINT, handler)
    return trainer.interrupted


class TrainingInterrupted(TlearnError):
    """Ctrl-C during training: the last finished epoch is saved and can be resumed."""

    exit_code = 130


def _generators(fit: FitInputs) -> dict[str, torch.Generator]:
    found = {}
    shuffle = fit.train_loader.generator or getattr(fit.train_loader.sampler, "generator", None)
    if shuffle is not None:
        found["shuffle"] = shuffle
    if fit.preprocessor is not None:
        found["augment"] = fit.preprocessor.generator
    return found


def _start_run(config: TrainConfig, resolved: TrainConfig, main: bool) -> Path:
    """Rank 0 creates the run directory and marks it incomplete; other ranks only learn its name."""
    if not main:
        return follower_run_dir(config)
    run_dir = new_run_dir(config.out, config.backbone)
    atomic_write_text(run_dir / "config.yaml", config_to_yaml(resolved.model_copy(update={"out": None})))
    atomic_write_json(run_dir / "metrics.json", {"complete": False})
    share_run_dir(run_dir)
    return run_dir


def train(config: TrainConfig, resume_from: Optional[Path] = None) -> Optional[RunResult]:
    """Train, evaluate on the test split and write the run directory; returns a :class:`RunResult`.

    ``resume_from``: a Lightning checkpoint of this run (see :func:`resume`) to continue from.
    Under DDP every rank calls this; rank 0 evaluates, writes and returns the result, the other
    ranks return ``None`` once training ends.
    """
    with launch_environment():
        try:
            return _train(config, resume_from)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise TlearnError(_disk_full_message(config, resume_from)) from None


def _disk_full_message(config: TrainConfig, resume_from: Optional[Path]) -> str:
    run_dir = resume_from.parent.parent if resume_from else os.environ.get(RUN_DIR_ENV)
    advice = "free some space or write runs to another disk with --out"
    if run_dir and (Path(run_dir) / "checkpoints" / "last.ckpt").is_file():
        return f"no space left on device while writing {run_dir}: {advice}, then resume with: tlearn train --resume {run_dir}"
    return f"no space left on device{f' while writing {run_dir}' if run_dir else ''}: {advice}, then start the run again"


def _train(config: TrainConfig, resume_from: Optional[Path]) -> Optional[RunResult]:
    from .engine import EpochHistory, GradualUnfreeze, TransferLearner

    started = time.perf_counter()
    check_distributed(config)
    main = launch_rank(config) == 0
    prepared = prepare(config)
    device, splits, model, prep, resolved = prepared.device, prepared.splits, prepared.model, prepared.prep, prepared.config
    run_dir = _start_run(config, resolved, main)

    fit = fit_inputs(prepared)
    if config.compile:
        fit.module.compile()  # in place: parameter names and the saved state dict stay the same
    history = EpochHistory(lambda rows: write_metrics_csv(run_dir / "metrics.csv", rows), _generators(fit))
    callbacks, groups = [history], None
    if config.schedule == "gradual":
        # The optimiser gets the final trainable set with per-stage LRs; then the backbone is
        # frozen until the milestone.
        groups = model.stage_groups(config.lr_ratio)
        model.freeze("backbone")
        callbacks.append(GradualUnfreeze(model, config.freeze, config.unfreeze_at))
    learner = TransferLearner(fit.module, fit.preprocessor, resolved, groups)
    threads = torch.get_num_threads()  # Lightning lowers it per DDP process on the CPU
    try:
        with warnings.catch_warnings():
            _quiet_lightning()
            trainer = _trainer(config, run_dir, device, callbacks)
            fit_started = time.perf_counter()
            ckpt = str(resume_from) if resume_from else None
            interrupted = _fit(trainer, learner, fit, ckpt)
    finally:
        torch.set_num_threads(threads)
    train_seconds = time.perf_counter() - fit_started
    if not trainer.is_global_zero:
        return None
    if interrupted:
        atomic_write_json(run_dir / "metrics.json", {"complete": False, "interrupted": True, "epochs_done": len(history.rows)})
        raise TrainingInterrupted(
            f"interrupted after {len(history.rows)} finished epoch(s); resume with: tlearn train --resume {run_dir}"
        )

    eval_started = time.perf_counter()
    test, test_logits = _evaluate(fit, model, splits, prep, device, config)
    metrics = _final_metrics(config, splits, history.rows, test, device, prep)
    metrics.update(train_seconds=round(train_seconds, 3), eval_seconds=round(time.perf_counter() - eval_started, 3))
    metrics.update(feature_cache=fit.cache, resumed=resume_from is not None, processes=trainer.world_size)
    _write_outputs(run_dir, model, config, prep, splits, history.rows, test)
    metrics["total_seconds"] = round(time.perf_counter() - started, 3)
    grid = misclassified_grid(splits.test, test_logits)
    write_report(run_dir, resolved.model_dump(), metrics, grid)
    metrics["complete"] = True
    atomic_write_json(run_dir / "metrics.json", metrics)  # last: `complete` marks a finished run
    return RunResult(run_dir, metrics, {name: run_dir / name for name in RUN_FILES})


def resume(run_dir: str | Path) -> RunResult:
    """Continue an interrupted run from its last finished epoch, with its own saved config."""
    from .config import make_config, read_yaml

    run_dir = Path(run_dir)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if not (run_dir / "config.yaml").is_file():
        raise TlearnError(f"cannot resume {run_dir}: not a tlearn run directory (no config.yaml)")
    if not checkpoint.is_file():
        raise TlearnError(f"cannot resume {run_dir}: no checkpoint yet (it stopped before finishing an epoch); start it again")
    config = make_config({**read_yaml(run_dir / "config.yaml"), "out": str(run_dir)}, str(run_dir / "config.yaml"))
    try:  # refuse anything but plain tensors and containers before Lightning touches the file
        torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise TlearnError(f"refusing to load {checkpoint}: not a plain tensor checkpoint ({first})") from None
    return train(config, resume_from=checkpoint)


def _evaluate(fit: FitInputs, model: TransferModel, splits: DataSplits, prep: Preprocessing, device: str,
              config: TrainConfig) -> tuple[dict, torch.Tensor]:
    """Test metrics and logits; with ``--tta N`` also the single-view accuracy, for comparison."""
    module, source = fit.module, fit.test_inputs
    preprocessor = BatchPreprocessor(prep) if fit.preprocessor is not None else None
    if config.tta > 1 and preprocessor is None:  # shifted views are not in the cache: run the whole model on images
        module, source, preprocessor = model, splits.test, BatchPreprocessor(prep)
    # Lightning moves the model back to the CPU when fit ends; evaluate where it trained.
    module.to(torch.device(device))
    autocast = AUTOCAST.get(config.precision)
    logits, single = batched_inference(module, preprocessor, source, None, device, autocast, tta=config.tta,
                                       single_view=True)
    test = classification_metrics(splits.test.labels, logits, splits.classes)
    if config.tta > 1:  # the unshifted view came out of the same pass
        test["accuracy_single_view"] = classification_metrics(splits.test.labels, single, splits.classes)["accuracy"]
    fit.module.cpu()  # holds ``model`` on the cached path too
    return test, logits


def _write_outputs(run_dir: Path, model, config: TrainConfig, prep: Preprocessing, splits: DataSplits, rows, test) -> None:
    crop = getattr(splits.test, "crop_pct", None)
    save_model(run_dir, model, model_spec(config, prep, splits.classes, splits.train.channels, crop))
    write_metrics_csv(run_dir / "metrics.csv", rows)
    plot_curves(rows, "acc", run_dir / "accuracy.png", f"{config.backbone}: accuracy")
    plot_curves(rows, "loss", run_dir / "loss.png", f"{config.backbone}: loss")
    plot_confusion_matrix(
        test["confusion_matrix"], splits.classes, run_dir / "confusion_matrix.png",
        f"test set ({test['samples']} images): {100 * test['accuracy']:.2f}%",
    )


def _final_metrics(config: TrainConfig, splits: DataSplits, rows: list[dict], test: dict, device: str, prep: Preprocessing) -> dict:
    last = rows[-1] if rows else {}
    return {
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "test_samples": test["samples"],
        "tta_views": config.tta,
        "test_accuracy_single_view": test.get("accuracy_single_view", test["accuracy"]),
        "train_samples": len(splits.train),
        "val_source": splits.val_source,
        "val_samples": len(splits.val) if splits.val is not None else 0,
        "final_val_accuracy": last.get("val_acc"),
        "final_train_accuracy": last.get("train_acc"),
        "epochs": len(rows),
        "backbone": config.backbone,
        "weights": config.weights,
        "freeze": config.freeze,
        "image_size": prep.image_size,
        "device": device,
        "seed": config.seed,
        "macro_f1": test["macro_f1"],
        "per_class": test["per_class"],
        "confusion_matrix": test["confusion_matrix"],
        "history": rows,
    }
