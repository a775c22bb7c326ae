"""Run directories: names that never collide, and refusing a file where a folder should be."""

import pytest

from tlearn.errors import RunError
from tlearn.runs.directory import new_run_dir


def test_default_names_are_unique_within_a_second(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = new_run_dir(None, "timm/resnet10t"), new_run_dir(None, "timm/resnet10t")
    assert first != second and first.is_dir() and second.is_dir()
    assert first.parent.name == "runs" and first.name.endswith("timm-resnet10t")


def test_out_must_be_a_directory(tmp_path):
    assert new_run_dir(str(tmp_path / "a" / "b"), "x") == tmp_path / "a" / "b"
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="exists and is not a directory"):
        new_run_dir(str(tmp_path / "file"), "x")
