"""Lightning's Trainer as tlearn sets it up."""

import pytest

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


def test_checkpoints_are_written_straight_to_disk_and_atomically(tmp_path, monkeypatch):
    import torch

    from tlearn.training.checkpoints.writer import DirectCheckpointIO

    trainer = build_trainer(make_config({"epochs": 1, "progress": False}), tmp_path, "cpu", [])
    io = trainer.strategy.checkpoint_io
    assert isinstance(io, DirectCheckpointIO)
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.arange(4.0)}, path)
    loaded = io.load_checkpoint(path)
    assert loaded["epoch"] == 1 and torch.equal(loaded["w"], torch.arange(4.0))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space"):
        io.save_checkpoint({"epoch": 2}, path)
    assert io.load_checkpoint(path)["epoch"] == 1  # the previous checkpoint is whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # no temporary file left


class _FillsUp:
    """A file that takes 1,000 bytes and then reports a full disk."""

    def __init__(self, handle):
        self.handle, self.written = handle, 0

    def write(self, data):
        import errno

        self.written += len(data)
        if self.written > 1000:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def test_a_disk_that_fills_mid_save_reports_the_os_error(tmp_path, monkeypatch):
    """torch's zip writer turns a write that fails part-way into a RuntimeError; the pipeline's
    one-line "disk full" message needs the OSError behind it."""
    import errno
    import os

    import torch

    from tlearn.training.checkpoints.writer import DirectCheckpointIO

    io, path = DirectCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1}, path)
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda *args, **kwargs: _FillsUp(real_fdopen(*args, **kwargs)))
    with pytest.raises(OSError) as raised:
        io.save_checkpoint({"epoch": 2, "w": torch.zeros(10_000)}, path)
    assert raised.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert io.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
