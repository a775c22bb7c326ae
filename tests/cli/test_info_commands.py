"""tlearn presets and tlearn backbones."""

import subprocess
import sys


def tlearn(*args):
    return subprocess.run([sys.executable, "-m", "tlearn.cli", *args], capture_output=True, text=True, timeout=600)


def test_presets_lists_each_preset():
    result = tlearn("presets")
    assert result.returncode == 0
    for name in ("default", "seed000-vgg16", "seed002-resnet50"):
        assert name in result.stdout


def test_backbones_offline_lists_the_packaged_one():
    result = tlearn("backbones", "--offline")
    assert result.returncode == 0 and "efficientnet_lite0" in result.stdout and "resnet50" not in result.stdout
