"""Experiment loggers of a run (``--logger csv,tensorboard,mlflow``), all through Lightning's own.

``metrics.csv`` (Lightning's ``CSVLogger``) is the run directory's record and is always written;
TensorBoard writes event files under ``RUN/tensorboard/`` and MLflow logs to ``--mlflow-uri``
(a local file store, ``./mlruns``, by default). Every logger gets the same things: the resolved
config as hyperparameters, one row per epoch (from ``EpochHistory``), the final test metrics and,
for MLflow, the run's plots and report as artifacts.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from ..errors import ConfigError
from ..runs.record import RunRecord

# The Python module each optional logger needs, all in the `track` extra.
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}
ARTIFACT_SUFFIXES = (".png", ".html")
MLFLOW_EXPERIMENT = "tlearn"


def check_packages(names: list[str]) -> None:
    """Fail at once, before any data is read, when an asked-for logger's package is missing."""
    for name in names:
        module = PACKAGES.get(name)
        if module and importlib.util.find_spec(module) is None:
            raise ConfigError(f"--logger {name} needs the '{module}' package: pip install 'tlearn[track]'")


def tracking_uri(uri: str) -> str:
    """``--mlflow-uri`` as MLflow wants it: a local folder becomes an absolute ``file:`` URI."""
    scheme = urlparse(uri).scheme
    if len(scheme) > 1:  # http:, https:, file:, sqlite:, databricks … (one letter: a Windows drive)
        return uri
    return Path(uri).expanduser().resolve().as_uri()


def build_loggers(config, run_dir: Path) -> list:
    """Lightning loggers for a run: ``metrics.csv`` in the run directory, plus those ``config.loggers`` names.

    The tracking loggers receive the resolved config as hyperparameters straight away.
    """
    from lightning.pytorch.loggers import CSVLogger

    check_packages(config.loggers)
    # name="" and version="" put metrics.csv in the run dir itself.
    loggers = [CSVLogger(save_dir=run_dir, name="", version="")]
    if "tensorboard" in config.loggers:
        from lightning.pytorch.loggers import TensorBoardLogger

        # One version folder per training process: a resumed run re-logs its restored epochs, so
        # each folder holds a complete history instead of one with repeated steps.
        loggers.append(TensorBoardLogger(save_dir=run_dir, name="tensorboard", default_hp_metric=False))
    if "mlflow" in config.loggers:
        loggers.append(_mlflow_logger(config, run_dir))
    params = hyperparameters(config)
    for logger in loggers[1:]:
        logger.log_hyperparams(params)
    return loggers


def _mlflow_logger(config, run_dir: Path):
    from lightning.pytorch.loggers import MLFlowLogger

    uri = tracking_uri(config.mlflow_uri)
    if uri.startswith("file:"):
        # MLflow 3 keeps its file store in maintenance mode and refuses it unless asked; a local
        # folder is the point of the default (nothing to set up), so tlearn asks for it.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    tags = {"tlearn.run_dir": str(Path(run_dir).resolve()), "tlearn.backbone": config.backbone}
    return MLFlowLogger(experiment_name=MLFLOW_EXPERIMENT, run_name=Path(run_dir).name, tracking_uri=uri, tags=tags)


def hyperparameters(config) -> dict:
    """The resolved config as a flat ``{option: value}`` mapping (lists and ``None`` as text)."""
    values = config.model_dump(mode="json")
    return {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in values.items()}


def tracking_loggers(loggers) -> list:
    """The loggers beyond the CSV record (TensorBoard, MLflow)."""
    from lightning.pytorch.loggers import CSVLogger

    return [logger for logger in loggers if not isinstance(logger, CSVLogger)]


def final_scores(record: RunRecord) -> dict[str, float]:
    """The test figures sent to the tracking loggers once the test set is scored (named as in metrics.json)."""
    scores: dict[str, Optional[float]] = {
        "test_accuracy": record.test_accuracy,
        "test_loss": record.test_loss,
        "test_samples": record.test_samples,
        "macro_f1": record.macro_f1,
        "test_accuracy_single_view": record.test_accuracy_single_view,
    }
    return {name: float(value) for name, value in scores.items() if value is not None}


def log_final(loggers, record: RunRecord, run_dir: Path) -> None:
    """Send the test metrics (at the last epoch's step) to the tracking loggers, and the run's
    plots and report to MLflow as artifacts; then close them.

    metrics.csv keeps one row per epoch, so the test scores go only to the trackers (metrics.json
    has them for the run directory).
    """
    if not loggers:  # trained without Lightning (a head on cached features): no trackers to close
        return
    from lightning.pytorch.loggers import MLFlowLogger

    final = final_scores(record)
    for logger in tracking_loggers(loggers):
        logger.log_metrics(final, step=record.epochs)
        if isinstance(logger, MLFlowLogger):
            for path in sorted(Path(run_dir).iterdir()):
                if path.suffix in ARTIFACT_SUFFIXES and path.is_file():
                    logger.experiment.log_artifact(logger.run_id, str(path))
        logger.finalize("success")
