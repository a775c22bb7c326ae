"""Lightning's Trainer as tlearn sets it up."""

from tlearn.config import make_config
from tlearn.training.trainer import build_trainer


def test_checkpoints_and_the_csv_logger_live_in_the_run_dir(tmp_path):
    trainer = build_trainer(make_config({"epochs": 3, "progress": False}), tmp_path, "cpu", [])
    names = sorted(cb.filename for cb in trainer.checkpoint_callbacks)
    assert names == ["best", "last"] and trainer.max_epochs == 3
    assert [type(logger).__name__ for logger in trainer.loggers] == ["CSVLogger"]
    assert trainer.loggers[0].experiment.metrics_file_path == str(tmp_path / "metrics.csv")
    quiet = build_trainer(make_config({"val_source": "none"}), tmp_path, "cpu", [], log_epochs=False)
    assert [cb.filename for cb in quiet.checkpoint_callbacks] == ["last"] and not quiet.loggers
