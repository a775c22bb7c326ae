"""The application's shared pieces: the base configuration of every training command, --debug."""

import pytest

from tlearn.cli import main
from tlearn.cli.app import resolve_base_config


def test_without_a_preset_the_datas_own_defaults_are_the_base(tmp_path, capsys):
    assert resolve_base_config(None, None, {}).image_size == 80  # MNIST: the default preset's size
    assert "→ defaults 'default'" in capsys.readouterr().out  # said in one line
    assert resolve_base_config("seed000-vgg16", None, {"epochs": 2}).backbone == "vgg16"
    (tmp_path / "c.yaml").write_text("epochs: 3\n")
    from_file = resolve_base_config(None, tmp_path / "c.yaml", {})
    assert from_file.epochs == 3 and from_file.image_size == 80  # a file's values go over those defaults


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--preset", "nope"])
    assert stop.value.code == 2 and "unknown preset" in capsys.readouterr().err
    from tlearn.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown preset"):
        main(["--debug", "train", "--preset", "nope"])
