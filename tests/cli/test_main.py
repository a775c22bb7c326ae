"""The CLI's one error translation point, fed the bad-input corpus: every case exits with code 2 and one
line on stderr, never a traceback.

Each case builds its bad input in a temporary folder and runs the CLI in-process (``main(argv)``).
"""

import json
import pickle
import subprocess
import sys

import pytest
import torch

from tests.helpers import synthetic_digits, write_idx_images, write_idx_labels
from tlearn.cli import main

TRAIN = ["train", "--dry-run", "--no-progress", "--image-size", "32"]


def _idx(root, n_images=100, n_labels=100, label_value=None, truncate=False):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        images, labels = synthetic_digits(n_images)
        if label_value is not None:
            labels[:] = label_value
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels[:n_labels])
    if truncate:
        path = raw / "train-images-idx3-ubyte"
        path.write_bytes(path.read_bytes()[:500])
    return root


def _folder(root, classes=("a", "b"), files=2, content=None):
    from PIL import Image

    for name in classes:
        (root / "train" / name).mkdir(parents=True)
        for i in range(files):
            path = root / "train" / name / f"{i}.png"
            if content is None:
                Image.new("RGB", (16, 16), (i * 40, 10, 10)).save(path)
            else:
                path.write_bytes(content)
    return root


def _evil_pickle(path, marker):
    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(path, "wb") as handle:
        pickle.dump({"state_dict": {"w": Evil()}}, handle)


def _run_dir(tmp_path, tiny_mnist):
    out = tmp_path / "run"
    assert (
        _cli([*TRAIN, "--data-dir", str(tiny_mnist), "--backbone", "resnet18", "--weights", "none", "--out", str(out)])
        == 0
    )
    return out


def _cli(argv):
    try:
        main(argv)
    except SystemExit as done:
        return done.code
    return 0


# Each case: (id, function(tmp_path, tiny_mnist) -> argv, expected fragment of the message)
CASES = [
    ("data-dir-missing", lambda t, m: [*TRAIN, "--data-dir", str(t / "nope")], "does not exist"),
    (
        "data-dir-empty",
        lambda t, m: (t / "e").mkdir() or [*TRAIN, "--data-dir", str(t / "e")],
        "put train-images-idx3-ubyte",
    ),
    ("idx-truncated", lambda t, m: [*TRAIN, "--data-dir", str(_idx(t / "d", truncate=True))], "corrupt or truncated"),
    ("idx-label-range", lambda t, m: [*TRAIN, "--data-dir", str(_idx(t / "d", label_value=42))], "labels outside 0-9"),
    (
        "idx-count-mismatch",
        lambda t, m: [*TRAIN, "--data-dir", str(_idx(t / "d", n_labels=50))],
        "are inconsistent: 100 images vs 50 labels",
    ),
    (
        "folder-no-train",
        lambda t, m: (t / "f").mkdir() or [*TRAIN, "--dataset", "folder", "--data-dir", str(t / "f")],
        "no train/ folder",
    ),
    (
        "folder-one-class",
        lambda t, m: [*TRAIN, "--dataset", "folder", "--data-dir", str(_folder(t / "f", classes=("a",)))],
        "at least 2 class folders",
    ),
    (
        "folder-empty-classes",
        lambda t, m: [*TRAIN, "--dataset", "folder", "--data-dir", str(_folder(t / "f", files=0))],
        "no usable images",
    ),
    (
        "folder-only-junk",
        lambda t, m: [*TRAIN, "--dataset", "folder", "--data-dir", str(_folder(t / "f", content=b"junk"))],
        "no usable images",
    ),
    ("folder-without-dir", lambda t, m: [*TRAIN, "--dataset", "folder"], "needs --data-dir"),
    ("csv-without-file", lambda t, m: [*TRAIN, "--dataset", "csv"], "needs --data-file"),
    ("csv-missing", lambda t, m: [*TRAIN, "--dataset", "csv", "--data-file", str(t / "x.csv")], "CSV file not found"),
    (
        "csv-header",
        lambda t, m: (
            (t / "x.csv").write_text("a,b\n1,2\n") and [*TRAIN, "--dataset", "csv", "--data-file", str(t / "x.csv")]
        ),
        "'path' and 'label'",
    ),
    (
        "csv-one-label",
        lambda t, m: (
            (t / "x.csv").write_text("path,label\na.png,x\n")
            and [*TRAIN, "--dataset", "csv", "--data-file", str(t / "x.csv")]
        ),
        "at least 2 distinct labels",
    ),
    (
        "train-size-too-big",
        lambda t, m: [*TRAIN, "--data-dir", str(m), "--train-size", "100000"],
        "more than the 300 training images",
    ),
    (
        "test-size-too-big",
        lambda t, m: [*TRAIN, "--data-dir", str(m), "--test-size", "5000"],
        "more than the 100 test images",
    ),
    (
        "train-size-zero",
        lambda t, m: [*TRAIN, "--data-dir", str(m), "--train-size", "0"],
        "invalid value for --train-size",
    ),
    ("lr-zero", lambda t, m: [*TRAIN, "--lr", "0"], "invalid value for --lr"),
    ("lr-negative", lambda t, m: [*TRAIN, "--lr", "-0.1"], "invalid value for --lr"),
    ("lr-nan", lambda t, m: [*TRAIN, "--lr", "nan"], "invalid value for --lr"),
    ("lr-text", lambda t, m: [*TRAIN, "--lr", "fast"], "Invalid value for '--lr'"),
    ("epochs-negative", lambda t, m: [*TRAIN, "--epochs", "-1"], "invalid value for --epochs"),
    ("tta-too-many-views", lambda t, m: [*TRAIN, "--tta", "10"], "invalid value for --tta"),
    ("batch-size-zero", lambda t, m: [*TRAIN, "--batch-size", "0"], "invalid value for --batch-size"),
    ("image-size-tiny", lambda t, m: ["train", "--image-size", "4"], "invalid value for --image-size"),
    ("dropout-range", lambda t, m: [*TRAIN, "--dropout", "1.5"], "invalid value for --dropout"),
    ("in-chans-2", lambda t, m: [*TRAIN, "--in-chans", "2"], "invalid value for --in-chans"),
    ("unknown-backbone", lambda t, m: [*TRAIN, "--backbone", "resnet5000"], "unknown backbone 'resnet5000'"),
    (
        "unknown-timm",
        lambda t, m: [*TRAIN, "--data-dir", str(m), "--backbone", "timm/nonexistent_net"],
        "unknown timm model",
    ),
    ("unknown-preset", lambda t, m: [*TRAIN, "--preset", "mnist-magic"], "unknown preset 'mnist-magic'"),
    ("unknown-dataset", lambda t, m: [*TRAIN, "--dataset", "imagenet"], "invalid value for --dataset"),
    ("unknown-option", lambda t, m: [*TRAIN, "--learning-rate", "1"], "No such option: --learning-rate"),
    ("unknown-command", lambda t, m: ["fit"], "No such command 'fit'"),
    ("freeze-garbage", lambda t, m: [*TRAIN, "--freeze", "half"], "invalid value for --freeze"),
    (
        "freeze-unknown-stage",
        lambda t, m: [
            *TRAIN,
            "--data-dir",
            str(m),
            "--backbone",
            "resnet18",
            "--weights",
            "none",
            "--freeze",
            "until:layer9",
        ],
        "unknown stage 'layer9'",
    ),
    ("config-missing", lambda t, m: [*TRAIN, "--config", str(t / "none.yaml")], "config file not found"),
    (
        "yaml-malformed",
        lambda t, m: (t / "c.yaml").write_text("epochs: [3\n") and [*TRAIN, "--config", str(t / "c.yaml")],
        "malformed YAML",
    ),
    (
        "yaml-unknown-key",
        lambda t, m: (t / "c.yaml").write_text("epoch: 3\n") and [*TRAIN, "--config", str(t / "c.yaml")],
        "unknown option 'epoch'",
    ),
    (
        "yaml-wrong-type",
        lambda t, m: (t / "c.yaml").write_text("epochs: ten\n") and ["train", "--config", str(t / "c.yaml")],
        "invalid value for 'epochs'",
    ),
    (
        "yaml-not-mapping",
        lambda t, m: (t / "c.yaml").write_text("- 1\n") and [*TRAIN, "--config", str(t / "c.yaml")],
        "expected a mapping",
    ),
    (
        "weights-missing",
        lambda t, m: [*TRAIN, "--data-dir", str(m), "--weights", str(t / "w.safetensors")],
        "weights file not found",
    ),
    (
        "weights-garbage",
        lambda t, m: (
            (t / "w.pt").write_bytes(b"\x00garbage")
            and [*TRAIN, "--data-dir", str(m), "--backbone", "resnet18", "--weights", str(t / "w.pt")]
        ),
        "refusing to load",
    ),
    (
        "weights-bad-safetensors",
        lambda t, m: (
            (t / "w.safetensors").write_bytes(b"nope")
            and [*TRAIN, "--data-dir", str(m), "--weights", str(t / "w.safetensors")]
        ),
        "cannot read safetensors",
    ),
    (
        "weights-wrong-arch",
        lambda t, m: (
            torch.save({"conv1.weight": torch.zeros(3)}, t / "w.pt")
            or [*TRAIN, "--data-dir", str(m), "--backbone", "resnet18", "--weights", str(t / "w.pt")]
        ),
        "do not fit this architecture",
    ),
    (
        "weights-malicious",
        lambda t, m: (
            _evil_pickle(t / "w.pt", t / "pwned")
            or [*TRAIN, "--data-dir", str(m), "--backbone", "resnet18", "--weights", str(t / "w.pt")]
        ),
        "refusing to load",
    ),
    ("device-cuda", lambda t, m: [*TRAIN, "--device", "cuda"], "no CUDA GPU is available"),
    ("not-a-run-evaluate", lambda t, m: ["evaluate", str(t)], "not a finished tlearn run"),
    ("run-dir-missing", lambda t, m: ["predict", str(t / "nope"), "x.png"], "run directory not found"),
    ("predict-missing-image", lambda t, m: ["predict", str(_run_dir(t, m)), str(t / "nope.png")], "no such image file"),
    (
        "predict-not-an-image",
        lambda t, m: (t / "x.png").write_bytes(b"txt") and ["predict", str(_run_dir(t, m)), str(t / "x.png")],
        "cannot read image",
    ),
    (
        "model-wrong-class-count",
        lambda t, m: _damage_classes(_run_dir(t, m)) and ["evaluate", str(t / "run")],
        "does not fit the model",
    ),
    (
        "export-unwritable",
        lambda t, m: ["export", str(_run_dir(t, m)), "--output", str(t / "no" / "m.onnx")],
        "does not exist",
    ),
    ("export-to-directory", lambda t, m: ["export", str(_run_dir(t, m)), "--output", str(t)], "is a directory"),
    (
        "export-timm-to-output",
        lambda t, m: ["export", str(t), "--format", "timm", "--output", str(t / "m")],
        "--format timm writes a folder: give it as --out DIR",
    ),
    ("export-onnx-to-out", lambda t, m: ["export", str(t), "--out", str(t / "m")], "give it as --output FILE"),
    ("train-size-not-a-number", lambda t, m: [*TRAIN, "--train-size", "most"], "takes a whole number or 'all'"),
    ("resume-not-a-run", lambda t, m: ["train", "--resume", str(t)], "not a tlearn run directory"),
    (
        "resume-with-options",
        lambda t, m: ["train", "--resume", str(t), "--lr", "0.1"],
        "--resume uses the run's saved config",
    ),
    (
        "resume-malicious-checkpoint",
        lambda t, m: _evil_checkpoint(_run_dir(t, m), t / "pwned") or ["train", "--resume", str(t / "run")],
        "refusing to load",
    ),
    ("devices-zero", lambda t, m: [*TRAIN, "--devices", "0"], "invalid value for --devices"),
    ("strategy-unknown", lambda t, m: [*TRAIN, "--strategy", "fsdp"], "invalid value for --strategy"),
    (
        "ddp-batch-uneven",
        lambda t, m: [*TRAIN, "--devices", "2", "--batch-size", "63"],
        "does not split evenly over 2 processes",
    ),
    ("ddp-gradual", lambda t, m: [*TRAIN, "--devices", "2", "--schedule", "gradual"], "cannot run under DDP"),
    ("ddp-nodes-without-launcher", lambda t, m: [*TRAIN, "--num-nodes", "2"], "needs a launcher on every machine"),
    (
        "lr-find-ddp",
        lambda t, m: (t / "c.yaml").write_text("devices: 2\n") and ["lr-find", "--config", str(t / "c.yaml")],
        "runs in one process",
    ),
    ("compare-bad-init", lambda t, m: ["compare", "--init", "imagenet21k"], "--init takes pretrained and/or random"),
    ("compare-bad-test-size", lambda t, m: ["compare", "--test-size", "0"], "invalid value for --test-size"),
]


def _damage_classes(run):
    spec = json.loads((run / "model.json").read_text())
    spec["classes"] = spec["classes"][:5]
    (run / "model.json").write_text(json.dumps(spec))
    return True


def _evil_checkpoint(run, marker):
    _evil_pickle(run / "checkpoints" / "last.ckpt", marker)


@pytest.mark.parametrize("make_argv, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_exit_2(make_argv, fragment, tmp_path, tiny_mnist, capsys):
    if fragment == "no CUDA GPU is available" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    argv = make_argv(tmp_path, tiny_mnist)
    capsys.readouterr()  # drop what building the input printed
    code = _cli(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("tlearn: warning")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert fragment in lines[0], lines[0]
    assert not (tmp_path / "pwned").exists()


def test_corpus_is_large_enough():
    assert len(CASES) >= 30


def tlearn(*args):
    return subprocess.run([sys.executable, "-m", "tlearn.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "--lr", "abc"], "Invalid value for '--lr'"),
        (["train", "--lr", "-1"], "invalid value for --lr"),
        (["train", "--lr", "nan"], "invalid value for --lr"),
        (["train", "--epochs", "0"], "invalid value for --epochs"),
        (["train", "--bogus"], "No such option: --bogus"),
        (["nope"], "No such command 'nope'"),
        (["train", "--preset", "nope"], "unknown preset 'nope'"),
        (["train", "--backbone", "resnet5000"], "unknown backbone 'resnet5000'"),
        (
            ["train", "--freeze", "until:layer99", "--backbone", "resnet18", "--weights", "none"],
            "unknown stage 'layer99'",
        ),
        (["train", "--config", "/no/such/file.yaml"], "config file not found"),
        (["train", "--weights", "/no/such/weights.safetensors"], "weights file not found"),
        (["train", "--device", "cuda"], "no CUDA GPU is available"),
    ],
)
def test_a_real_process_prints_one_line_and_exits_2(args, fragment, tiny_mnist):
    if fragment == "no CUDA GPU is available":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    result = tlearn(*args, "--data-dir", str(tiny_mnist), "--dry-run") if args[0] == "train" else tlearn(*args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert fragment in lines[0]


def test_the_command_skips_interpreter_teardown_but_runs_exit_handlers_and_keeps_output(tiny_mnist, tmp_path):
    """A successful command ends with the exit handlers run and the output flushed (the quick exit);
    the run directory is complete."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('exit handler ran', flush=True))\n"
        "from tlearn.cli.main import entry_point\n"
        f"sys.argv = ['tlearn', 'train', '--dry-run', '--data-dir', {str(tiny_mnist)!r}, "
        f"'--out', {str(tmp_path / 'run')!r}]\n"
        "entry_point()\n"
        "print('not reached')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Test accuracy" in result.stdout and "exit handler ran" in result.stdout
    assert "not reached" not in result.stdout
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["complete"] is True


def test_the_command_keeps_the_normal_exit_on_errors():
    script = "import sys\nfrom tlearn.cli.main import entry_point\nsys.argv = ['tlearn', 'nope']\nentry_point()\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "No such command 'nope'" in result.stderr
