"""The application's shared pieces: the base configuration of every training command (data-aware defaults
under files and flags, resets), --debug, loading the stack."""

import gc
import subprocess
import sys

import pytest
import typer

from tests.helpers import make_folder
from tlearn.cli import app, main
from tlearn.cli.app import load_stack, resolve_base_config, resolve_with_data_defaults
from tlearn.config import RESET


def test_without_a_preset_the_datas_own_defaults_are_the_base(tmp_path, capsys):
    assert resolve_base_config(None, None, {}).image_size == 80  # MNIST: the default preset's size
    assert "→ defaults 'default'" in capsys.readouterr().out  # said in one line
    assert resolve_base_config("seed000-vgg16", None, {"epochs": 2}).backbone == "vgg16"
    (tmp_path / "c.yaml").write_text("epochs: 3\n")
    from_file = resolve_base_config(None, tmp_path / "c.yaml", {})
    assert from_file.epochs == 3 and from_file.image_size == 80  # a file's values go over those defaults


def test_layering_preset_then_file_then_flags(tmp_path):
    root = make_folder(tmp_path / "p", counts={"train": 2}, bad_files=0, size=96)
    config, profile = resolve_with_data_defaults(None, None, {"data_dir": str(root)})
    assert profile.preset == "photos" and config.dataset == "folder" and config.train_size is None
    assert config.image_size == 224 and "photos" in config.description
    (tmp_path / "c.yaml").write_text("image_size: 96\nepochs: 3\n")
    config, _ = resolve_with_data_defaults(None, tmp_path / "c.yaml", {"data_dir": str(root), "epochs": 5})
    assert (config.image_size, config.epochs) == (96, 5)
    config, profile = resolve_with_data_defaults("default", None, {"data_dir": str(root), "dataset": "folder"})
    assert profile is None and config.train_size == 1000  # an explicit preset is taken as it is


def test_a_bad_value_still_names_its_source(tmp_path):
    from tlearn.errors import ConfigError

    (tmp_path / "c.yaml").write_text("epochs: ten\n")
    with pytest.raises(ConfigError, match="c.yaml: invalid value for 'epochs'"):
        resolve_with_data_defaults(None, tmp_path / "c.yaml", {})


def test_another_backbone_keeps_the_photo_defaults_valid(tmp_path):
    """The photos preset freezes Lite0's stages up to blocks.5; with another backbone it uses that
    model's native size and trains a linear head on its frozen features."""
    root = make_folder(tmp_path / "p", counts={"train": 2}, bad_files=0, size=96)
    config, _ = resolve_with_data_defaults(None, None, {"data_dir": str(root), "backbone": "resnet18"})
    assert str(config.freeze) == "backbone" and config.image_size is None
    config, _ = resolve_with_data_defaults(
        None, None, {"data_dir": str(root), "backbone": "resnet18", "freeze": "until:layer3"}
    )
    assert str(config.freeze) == "until:layer3"
    lite0, _ = resolve_with_data_defaults(None, None, {"data_dir": str(root)})
    assert str(lite0.freeze) == "until:blocks.5" and lite0.image_size == 224


def test_a_reset_flag_overrides_the_preset_and_the_data_defaults(tmp_path):
    """--train-size all over mnist1000-fast's 1,000; --image-size native over the photos defaults' 224."""
    params = (
        typer.main.get_command(app)
        .commands["train"]
        .make_context("train", ["--preset", "mnist1000-fast", "--train-size", "all", "--time-budget", "off"])
        .params
    )
    overrides = {name: params[name] for name in ("train_size", "time_budget")}
    config = resolve_base_config(params["preset"], None, overrides)
    assert config.train_size is None and config.time_budget is None and config.image_size == 64
    root = make_folder(tmp_path / "p", counts={"train": 2}, bad_files=0, size=96)
    (tmp_path / "c.yaml").write_text("ema: 0.99\n")
    config, profile = resolve_with_data_defaults(
        None, tmp_path / "c.yaml", {"data_dir": str(root), "image_size": RESET, "ema": RESET}
    )
    assert profile.preset == "photos" and config.image_size is None and config.ema is None


def test_a_reset_data_dir_is_detected_as_the_default_root(tmp_path, monkeypatch, tiny_mnist):
    (tmp_path / "c.yaml").write_text(f"data_dir: {tmp_path / 'elsewhere'}\n")
    monkeypatch.setenv("TLEARN_DATA_DIR", str(tiny_mnist))
    config, profile = resolve_with_data_defaults(None, tmp_path / "c.yaml", {"data_dir": RESET})
    assert config.data_dir is None and profile.dataset == "mnist" and "MNIST (no other" not in profile.summary


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--preset", "nope"])
    assert stop.value.code == 2 and "unknown preset" in capsys.readouterr().err
    from tlearn.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown preset"):
        main(["--debug", "train", "--preset", "nope"])


def test_load_stack_imports_with_the_collector_paused_then_freezes_what_it_built():
    """In a fresh process: the stack is imported, its objects frozen, collection back on."""
    script = (
        "import gc, sys\n"
        "from tlearn.cli.app import load_stack\n"
        "assert 'torch' not in sys.modules\n"
        "load_stack(plots=True)\n"
        "loaded = 'timm' in sys.modules and 'matplotlib.pyplot' in sys.modules\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 100000, loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True", "True"]


def test_load_stack_leaves_a_process_that_already_has_torch_alone():
    import torch  # noqa: F401  (a test session has it; so would a program calling main())

    frozen = gc.get_freeze_count()
    load_stack(plots=True)
    assert gc.get_freeze_count() == frozen and gc.isenabled()
