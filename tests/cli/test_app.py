"""The application's shared pieces: the base configuration of every training command, --debug, loading the stack."""

import gc
import subprocess
import sys

import pytest

from tlearn.cli import main
from tlearn.cli.app import load_stack, resolve_base_config


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
