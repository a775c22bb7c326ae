"""--logger: TensorBoard and MLflow receive what metrics.csv holds, plus the config, test scores and artifacts."""

import csv
import json

import pytest

from tlearn.cli import main
from tlearn.config import make_config
from tlearn.errors import ConfigError
from tlearn.training import loggers
from tlearn.training.pipeline import train

SMALL = {
    "backbone": "resnet18",
    "weights": "none",
    "image_size": 32,
    "batch_size": 32,
    "train_size": 100,
    "val_size": 50,
    "epochs": 2,
    "progress": False,
}
COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")


def test_tensorboard_and_mlflow_hold_the_csv_rows_config_test_scores_and_artifacts(tiny_mnist, tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, store = tmp_path / "run", tmp_path / "mlruns"
    values = {**SMALL, "data_dir": str(tiny_mnist), "out": str(out), "loggers": "tensorboard,mlflow"}
    config = make_config({**values, "mlflow_uri": str(store)})
    result = train(config)
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    final = json.loads((out / "metrics.json").read_text())

    events = EventAccumulator(str(next((out / "tensorboard").glob("version_*")))).Reload()
    for key in COLUMNS:
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        assert logged == [(int(r["epoch"]), pytest.approx(float(r[key]), rel=1e-6)) for r in rows], key
    assert events.Scalars("test_accuracy")[-1].value == pytest.approx(final["test_accuracy"], rel=1e-6)

    client = MlflowClient(loggers.tracking_uri(str(store)))
    (run,) = client.search_runs(client.get_experiment_by_name(loggers.MLFLOW_EXPERIMENT).experiment_id)
    assert run.info.run_name == out.name and run.data.tags["tlearn.run_dir"] == str(out.resolve())
    for key in COLUMNS:
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        assert history == [(int(r["epoch"]), pytest.approx(float(r[key]), rel=1e-9)) for r in rows], key
    assert run.data.metrics["test_accuracy"] == pytest.approx(final["test_accuracy"])
    assert run.data.metrics["test_samples"] == result.metrics["test_samples"] == 100
    assert run.data.params["lr"] == str(config.lr) and run.data.params["backbone"] == "resnet18"
    assert run.data.params["freeze"] == "none" and run.data.params["loggers"] == "['tensorboard', 'mlflow']"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"accuracy.png", "loss.png", "confusion_matrix.png", "report.html"}


def test_logger_option_takes_a_comma_separated_list_and_names_itself_in_errors():
    assert make_config({"loggers": "tensorboard, mlflow,tensorboard"}).loggers == ["tensorboard", "mlflow"]
    assert make_config({"loggers": ["mlflow"]}).loggers == ["mlflow"]
    assert make_config({}).loggers == ["csv"]


def test_unknown_logger_is_a_one_line_error_naming_the_flag(capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "--logger", "wandb", "--dry-run"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "--logger" in err and "wandb" in err and len(err.strip().splitlines()) == 1


def test_missing_tracker_package_is_a_one_line_error_naming_the_extra(monkeypatch, capsys, tiny_mnist, tmp_path):
    monkeypatch.setitem(loggers.PACKAGES, "mlflow", "tlearn_no_such_module")
    with pytest.raises(ConfigError, match=r"tlearn\[track\]"):
        loggers.check_packages(["csv", "mlflow"])
    with pytest.raises(SystemExit) as done:
        main(["train", "--logger", "mlflow", "--dry-run", "--data-dir", str(tiny_mnist), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "pip install 'tlearn[track]'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # refused before the run started


def test_mlflow_uri_local_folders_become_file_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert loggers.tracking_uri("./mlruns") == (tmp_path / "mlruns").resolve().as_uri()
    assert loggers.tracking_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert loggers.tracking_uri("sqlite:///mlflow.db") == "sqlite:///mlflow.db"
