"""One training run as one object: its config, device, preprocessing, data splits, model, what the
trainer is fed (images or cached activations), its directory and its clock; the phases as methods.

``tlearn.train`` reads as the sequence ``Run.prepare`` → ``open_directory`` → (the time budget's
stage, which may ``reconfigure`` the run) → fit (:mod:`.fitting`) → finish (:mod:`.finish`).
Everything a phase needs is on the run, so no function threads ``(config, prepared, inputs,
run_dir, …)`` by hand.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import torch

from ..config import FreezeSpec, TrainConfig, config_to_yaml
from ..data.augment import batch_mix, inverse_frequency_weights
from ..data.dataset import DataSplits, build_splits
from ..data.preprocessing import Preprocessing, resolve_preprocessing
from ..fileio import atomic_write_json, atomic_write_text
from ..models.backbones import backbone_info, create_backbone
from ..models.transfer import TransferModel, build_model
from ..runs.directory import new_run_dir
from ..runtime import resolve_device, seconds_spent, seed_everything
from .distributed import follower_run_dir, is_distributed, local_rank, share_run_dir
from .feed import Feed, build_feed
from .objective import LossTerms

# The options that decide which images the splits hold; a change of any of them (or of the
# preprocessing) reads the data again, any other change only rebuilds the model and its feed.
DATA_FIELDS = ("dataset", "data_dir", "data_file", "seed", "train_size", "test_size", "val_source", "val_size")
# Options that change only how long the run trains: neither its data, its model nor its feed.
PLAN_FIELDS = frozenset({"epochs", "time_budget"})


def build_transfer_model(config: TrainConfig, preprocessing: Preprocessing, num_classes: int) -> TransferModel:
    """Backbone + head + freezing, exactly as ``config`` says, for inputs prepared by ``preprocessing``."""
    backbone = create_backbone(config.backbone, config.weights, in_chans=config.in_chans)
    model = build_model(backbone, preprocessing, num_classes, config.head, config.dropout, config.head_hidden)
    model.freeze(config.freeze)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


class Run:
    """A training run: made by :meth:`prepare`, trained by :func:`.fitting.fit_run`, written by
    :func:`.finish.finish_run`."""

    def __init__(
        self,
        config: TrainConfig,
        device: str,
        preprocessing: Preprocessing,
        splits: DataSplits,
        model: TransferModel,
        feed: Feed,
        started: float,
    ) -> None:
        self.config = config
        self.device = device
        self.preprocessing = preprocessing
        self.splits = splits
        self.model = model
        self.feed = feed
        self.started = started  # perf_counter() at the start (see runtime.seconds_spent)
        self.directory: Optional[Path] = None
        self.resume_from: Optional[Path] = None  # a Lightning checkpoint of this run to continue from

    @classmethod
    def prepare(cls, config: TrainConfig, started: Optional[float] = None) -> Run:
        """Resolve the device and the preprocessing, load the splits, build the model and its feed.

        Call it where a run starts (inside ``distributed.launch_environment``): it seeds every
        random generator with ``--seed``.
        """
        started = time.perf_counter() if started is None else started
        device, preprocessing, splits = prepare_data(config)
        return cls._assemble(config, device, preprocessing, splits, started)

    @classmethod
    def _assemble(
        cls, config: TrainConfig, device: str, preprocessing: Preprocessing, splits: DataSplits, started: float
    ) -> Run:
        model = build_transfer_model(config, preprocessing, len(splits.classes))
        feed = build_feed(config, model, preprocessing, splits, device)
        return cls(config, device, preprocessing, splits, model, feed, started)

    def reconfigure(self, **changes) -> None:
        """Apply config ``changes`` as if the run had been prepared with them from the start.

        The data is read again only when a :data:`DATA_FIELDS` option or the preprocessing
        changes; otherwise the generators are seeded again (the splits draw none of their numbers)
        and the model and its feed are rebuilt on the splits already read.
        """
        config = self.config.with_changes(**changes)
        if config == self.config:
            return
        if set(changes) <= PLAN_FIELDS:
            self.config = config
            return
        preprocessing = resolve_preprocessing(config, backbone_info(config.backbone))
        data_changed = any(getattr(config, name) != getattr(self.config, name) for name in DATA_FIELDS)
        if data_changed or preprocessing != self.preprocessing:
            fresh = Run.prepare(config, self.started)
        else:
            seed_everything(config.seed)
            fresh = Run._assemble(config, self.device, preprocessing, self.splits, self.started)
        self.config, self.preprocessing, self.splits = fresh.config, fresh.preprocessing, fresh.splits
        self.model, self.feed = fresh.model, fresh.feed

    def seconds_spent(self) -> float:
        """Seconds since the run started (since the process started, under ``tlearn train``)."""
        return seconds_spent(self.started)

    # --- the run directory --------------------------------------------------------------------

    def open_directory(self, main: bool, overwrite: bool) -> Path:
        """Rank 0 creates the run directory (or reuses it when resuming) and marks it incomplete;
        other ranks only learn its name."""
        if not main:
            self.directory = follower_run_dir(self.config)
            return self.directory
        if self.resume_from is not None:
            self.directory = Path(self.config.out)
        else:
            self.directory = new_run_dir(self.config.out, self.config.backbone, overwrite)
        self.save_config()
        self.write_state({"complete": False})
        share_run_dir(self.directory)
        return self.directory

    def save_config(self, config: Optional[TrainConfig] = None) -> None:
        """config.yaml: the run's settings (or ``config``) without its output folder, so that it
        reproduces the run anywhere."""
        config = config or self.config
        atomic_write_text(self.directory / "config.yaml", config_to_yaml(config.with_changes(out=None)))

    def write_state(self, state: dict) -> None:
        """metrics.json of a run that has not finished (``complete`` false, and why)."""
        atomic_write_json(self.directory / "metrics.json", state)

    # --- what the loss needs ------------------------------------------------------------------

    def loss_terms(self) -> LossTerms:
        """What shapes the training loss: MixUp/CutMix, label smoothing, class weights."""
        weights = None
        if self.config.class_weights == "auto":  # each class weighted by its inverse training frequency
            weights = inverse_frequency_weights(self.splits.train.labels, len(self.splits.classes))
        mix = batch_mix(self.config.mixup, self.config.cutmix, len(self.splits.classes))
        return LossTerms(mix, self.config.label_smoothing, weights)


def prepare_data(config: TrainConfig) -> tuple[str, Preprocessing, DataSplits]:
    """The device, the preprocessing and the seeded splits of a run (seeding every generator first)."""
    device = resolve_device(config.device)
    if device == "cuda" and is_distributed(config):
        torch.cuda.set_device(local_rank())  # each rank extracts features on its own GPU, not all on cuda:0
    preprocessing = resolve_preprocessing(config, backbone_info(config.backbone))  # a bad name fails before data
    seed_everything(config.seed)
    return device, preprocessing, build_splits(config, preprocessing)


def frozen_words(spec: FreezeSpec) -> str:
    """``--freeze`` in words: nothing, the backbone, or the stem to a stage."""
    return {"none": "nothing", "backbone": "the backbone"}.get(spec.kind, f"the stem to {spec.stage}")
