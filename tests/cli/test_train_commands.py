"""tlearn train / lr-find / compare as a user meets them: light help, a dry run, data from the environment."""

import json
import os
import subprocess
import sys


def tlearn(*args, env=None, cwd=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tlearn.cli", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=600
    )


def test_help_is_light():
    code = "import sys, tlearn.cli; print(any(m in sys.modules for m in ('torch', 'lightning', 'timm')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    result = tlearn("train", "--help")
    assert result.returncode == 0 and "--preset" in result.stdout and "--freeze" in result.stdout


def test_missing_dataset_says_where_to_put_it(tmp_path):
    (tmp_path / "empty").mkdir()
    result = tlearn("train", "--data-dir", str(tmp_path / "empty"))
    assert result.returncode == 2
    assert str(tmp_path / "empty" / "MNIST" / "raw") in result.stderr and "Traceback" not in result.stderr


def test_bad_yaml_key_is_named(tmp_path, tiny_mnist):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 2\nlearnin_rate: 0.1\n")
    result = tlearn("train", "--config", str(cfg), "--data-dir", str(tiny_mnist))
    assert result.returncode == 2 and "unknown option 'learnin_rate'" in result.stderr


def test_dry_run_end_to_end(tiny_mnist, tmp_path):
    out = tmp_path / "run"
    result = tlearn(
        "train", "--dry-run", "--data-dir", str(tiny_mnist), "--image-size", "32", "--out", str(out), "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    assert "Test accuracy" in result.stdout and "on 64 test images" in result.stdout and str(out) in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["complete"] and metrics["train_samples"] == 64
    assert f"on cpu ({metrics['machine']['cpu']})" in result.stdout  # the timing names the CPU it ran on


def test_data_dir_from_environment(tiny_mnist, tmp_path):
    out = tmp_path / "run"
    result = tlearn(
        "train",
        "--dry-run",
        "--image-size",
        "32",
        "--out",
        str(out),
        "--no-progress",
        env={"TLEARN_DATA_DIR": str(tiny_mnist)},
    )
    assert result.returncode == 0, result.stderr


def test_compare_rejects_bad_lists():
    result = tlearn("compare", "--init", "pretrained,imagenet21k")
    assert result.returncode == 2 and "--init takes pretrained and/or random" in result.stderr
    result = tlearn("compare", "--train-sizes", "100,lots")
    assert result.returncode == 2 and "not 'lots'" in result.stderr
    result = tlearn("compare", "--freezes", "backbone,half")
    assert result.returncode == 2 and "--freezes takes backbone, none or until:<stage>, not 'half'" in result.stderr
    result = tlearn("compare", "--freeze", "none")  # one value per --freeze, as in train: compare's list is --freezes
    assert result.returncode == 2 and "No such option: --freeze" in result.stderr and "--freezes" in result.stderr


def test_compare_and_lr_find_take_the_train_options(tiny_mnist, tmp_path):
    """compare's base configuration takes any train option (here --test-size), as lr-find's does."""
    out = tmp_path / "cmp"
    result = tlearn(
        "compare",
        "--backbones",
        "resnet18",
        "--init",
        "random",
        "--train-sizes",
        "40",
        "--freezes",
        "none",
        "--data-dir",
        str(tiny_mnist),
        "--test-size",
        "30",
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--val-source",
        "none",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "| 40 |" in (out / "compare.md").read_text() and "| 30 |" in (out / "compare.md").read_text()
    result = tlearn("lr-find", "--test-size", "0")
    assert result.returncode == 2 and "invalid value for --test-size" in result.stderr


def test_mnist_written_as_png_files_needs_no_flags(mnist_root, tmp_path):
    """``tlearn train --data-dir DIR`` on MNIST digits saved as PNG class folders: recognised as small grey
    images, trained with the MNIST defaults on all of them, tested on test/."""
    from PIL import Image

    from tlearn.data.idx import load_idx

    for split, train_split, n in (("train", True, 30), ("test", False, 10)):
        data = load_idx(mnist_root, train_split)
        for digit in range(10):
            folder = tmp_path / "png" / split / str(digit)
            folder.mkdir(parents=True)
            for i, index in enumerate((data.labels == digit).nonzero().flatten()[:n].tolist()):
                Image.fromarray(data.images[index, 0].numpy()).save(folder / f"{i}.png")
    out = tmp_path / "run"
    result = tlearn("train", "--data-dir", str(tmp_path / "png"), "--epochs", "3", "--no-progress", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "small grey images" in result.stdout and "defaults 'default'" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_samples"] == 300 - 60 and metrics["test_samples"] == 100  # a holdout of 60 validates
    assert metrics["test_accuracy"] > 0.5  # chance is 0.1; about 0.8 after 3 epochs on 240 digits
    assert "in_chans: 1" in (out / "config.yaml").read_text()


def test_a_reset_word_overrides_the_preset(tiny_mnist, tmp_path):
    """mnist1000-fast trains on 1,000 images (here --dry-run's 64); --train-size all takes every one of the 300."""
    out = tmp_path / "run"
    result = tlearn(
        "train",
        "--preset",
        "mnist1000-fast",
        "--dry-run",
        "--train-size",
        "all",
        "--test-size",
        "all",
        "--data-dir",
        str(tiny_mnist),
        "--image-size",
        "32",
        "--no-progress",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["train_samples"], metrics["test_samples"]) == (300, 100)
    assert "train_size: null" in (out / "config.yaml").read_text()
