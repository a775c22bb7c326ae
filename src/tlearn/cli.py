"""The ``tlearn`` command line: a thin layer over the Python API.

Only typer is imported at start-up; torch and friends load inside the commands, so
``tlearn --help`` answers instantly. User errors print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import os
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    help="Transfer learning for image classification: fine-tune pretrained CNNs on your images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

DEBUG = {"on": False}


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


def _opt(help_text: str, *names: str):
    return typer.Option(None, *names, help=help_text, show_default=False)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    DEBUG["on"] = debug or os.environ.get("TLEARN_DEBUG", "") not in ("", "0")


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def train(
    preset: Optional[str] = _opt("Start from a shipped preset (see 'tlearn presets'); flags override it.", "--preset"),
    config: Optional[Path] = _opt("YAML config file; flags override it.", "--config"),
    backbone: Optional[str] = _opt("efficientnet_lite0 | resnet50 | vgg16 | any torchvision CNN | timm/<name>.", "--backbone"),
    weights: Optional[str] = _opt("imagenet | none | PATH to a .safetensors/.pt state dict.", "--weights"),
    head: Optional[str] = _opt("linear (pool-dropout-linear) | mlp (seed 000's Flatten-Dense-Dropout-Dense).", "--head"),
    freeze: Optional[str] = _opt("backbone | none | until:<stage>.", "--freeze"),
    dataset: Optional[str] = _opt("mnist | fashion-mnist | kmnist | cifar10 | cifar100 | svhn | folder | csv.", "--dataset"),
    data_dir: Optional[str] = _opt("Dataset root (else $TLEARN_DATA_DIR, else ~/.cache/tlearn/datasets).", "--data-dir"),
    data_file: Optional[str] = _opt("CSV file with path,label columns (--dataset csv).", "--data-file"),
    train_size: Optional[int] = _opt("Training images, a seeded class-stratified subset.", "--train-size"),
    test_size: Optional[int] = _opt("Test images (default: the full test set).", "--test-size"),
    val_source: Optional[str] = _opt("holdout | test | none: where per-epoch validation images come from.", "--val-source"),
    val_size: Optional[int] = _opt("Validation images for --val-source holdout.", "--val-size"),
    image_size: Optional[int] = _opt("Input side in pixels (default: the preset's or the backbone's).", "--image-size"),
    in_chans: Optional[int] = _opt("3: grey replicated to RGB; 1: adapt the first convolution.", "--in-chans"),
    normalize: Optional[str] = _opt("weights | imagenet | none ([0, 1] like seed 000).", "--normalize"),
    augment: Optional[str] = _opt("none | seed | digits | randaugment.", "--augment"),
    epochs: Optional[int] = _opt("Training epochs.", "--epochs"),
    batch_size: Optional[int] = _opt("Images per optimiser step (in total over all DDP processes).", "--batch-size"),
    optimizer: Optional[str] = _opt("adam | adamw | sgd (with momentum).", "--optimizer"),
    lr: Optional[float] = _opt("Learning rate.", "--lr"),
    weight_decay: Optional[float] = _opt("Weight decay.", "--weight-decay"),
    momentum: Optional[float] = _opt("SGD momentum.", "--momentum"),
    scheduler: Optional[str] = _opt("none | cosine | onecycle.", "--scheduler"),
    label_smoothing: Optional[float] = _opt("Label smoothing.", "--label-smoothing"),
    tta: Optional[int] = _opt("Test-time views (1-9) averaged for the final test score; 1 = off.", "--tta"),
    dropout: Optional[float] = _opt("Dropout before the linear head.", "--dropout"),
    schedule: Optional[str] = _opt("standard | gradual (frozen backbone first, then discriminative LRs).", "--schedule"),
    unfreeze_at: Optional[int] = _opt("gradual: epochs with the backbone frozen before unfreezing.", "--unfreeze-at"),
    lr_ratio: Optional[float] = _opt("gradual: head LR / earliest stage LR.", "--lr-ratio"),
    device: Optional[Device] = _opt("auto (CUDA, then MPS, then CPU) | cpu | cuda | mps.", "--device"),
    precision: Optional[str] = _opt("32-true | bf16-mixed | 16-mixed.", "--precision"),
    seed: Optional[int] = _opt("Random seed (same seed, same numbers on CPU).", "--seed"),
    devices: Optional[int] = _opt("Processes (CPU) or GPUs per machine; >1 trains with DDP, --batch-size split across them.", "--devices"),
    num_nodes: Optional[int] = _opt("Machines taking part in DDP (start each with torchrun or srun).", "--num-nodes"),
    strategy: Optional[str] = _opt("auto (DDP when --devices x --num-nodes > 1) | ddp.", "--strategy"),
    num_workers: Optional[int] = _opt("Data loader worker processes.", "--num-workers"),
    feature_cache: Optional[str] = _opt("auto (train on cached frozen features whenever exact) | off.", "--feature-cache"),
    cached_views: Optional[int] = _opt("With augmentation and a frozen part: cache K augmented views per image.", "--cached-views"),
    cache_dir: Optional[str] = _opt("Feature cache folder (default ~/.cache/tlearn/features).", "--cache-dir"),
    out: Optional[str] = _opt("Run directory (default runs/<timestamp>-<backbone>).", "--out"),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the trained part.", show_default=False),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="channels_last memory format (default on).", show_default=False),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide the progress bar."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Tiny end-to-end run: 1 epoch, 64 train / 64 test images."),
    resume: Optional[Path] = _opt("Continue an interrupted run directory from its last finished epoch.", "--resume"),
) -> None:
    """Fine-tune a pretrained backbone and write a run directory (metrics, plots, model).

    Examples:\n
      tlearn train                                  # EfficientNet-Lite0 on 1,000 MNIST digits\n
      tlearn train --preset seed000-vgg16           # seed 000, reproduced\n
      tlearn train --backbone resnet18 --freeze backbone --epochs 5\n
      tlearn train --devices 2 --strategy ddp          # two processes (DDP)
    """
    values = {k: v for k, v in locals().items() if k not in ("preset", "config", "no_progress", "dry_run", "resume")}
    if resume is not None:
        given = sorted(k for k, v in values.items() if v is not None) + (["preset"] if preset else []) + (["config"] if config else [])
        if given:
            raise typer.BadParameter(f"--resume uses the run's saved config; drop --{given[0].replace('_', '-')}")
        from .train import resume as resume_run

        _print_summary(resume_run(resume))
        return
    values["device"] = device.value if device is not None else None
    if no_progress:
        values["progress"] = False
    if dry_run:  # tiny sizes, unless given explicitly
        for key, small in {"epochs": 1, "train_size": 64, "test_size": 64, "val_size": 32}.items():
            values[key] = small if values.get(key) is None else values[key]
    cfg = _base_config(preset, config, values.pop("data_dir"), values)
    from .train import train as run_training

    result = run_training(cfg)
    _print_summary(result)


def _print_summary(result) -> None:
    from rich.console import Console

    if result is None:  # a DDP rank other than 0: rank 0 reports
        return
    m = result.metrics
    console = Console()
    console.print(
        f"[bold green]Test accuracy {100 * m['test_accuracy']:.2f}%[/] on {m['test_samples']:,} test images "
        f"({m['train_samples']:,} training images, {m['epochs']} epochs, seed {m['seed']})"
    )
    if m.get("tta_views", 1) > 1:
        console.print(f"Test-time augmentation: {m['tta_views']} views; one view alone gives "
                      f"{100 * m['test_accuracy_single_view']:.2f}%")
    if m.get("final_val_accuracy") is not None:
        console.print(f"Validation accuracy (last epoch, {m['val_source']}, {m['val_samples']:,} images): {100 * m['final_val_accuracy']:.2f}%")
    console.print(f"Training time {m['train_seconds']:.1f} s, total {m['total_seconds']:.1f} s on {m['device']}")
    console.print(f"Run directory: {result.run_dir}")


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="A finished run directory."),
    data_dir: Optional[str] = _opt("Dataset root (default: the run's, else $TLEARN_DATA_DIR).", "--data-dir"),
    test_size: Optional[int] = _opt("Evaluate on a seeded stratified subset of N test images.", "--test-size"),
    tta: int = typer.Option(1, "--tta", min=1, max=9, help="Average N shifted views per image (test-time augmentation)."),
) -> None:
    """Re-evaluate a trained run on its test set: accuracy, per-class table, confusion matrix.

    Example: tlearn evaluate runs/20261122-170229-efficientnet_lite0 --test-size 2000
    """
    from rich.console import Console
    from rich.table import Table

    from .inference import evaluate_run, load_run

    metrics = evaluate_run(load_run(run_dir), data_dir, test_size, tta)
    console = Console()
    views = f" ({tta} test-time views)" if tta > 1 else ""
    console.print(f"[bold]Accuracy {100 * metrics['accuracy']:.2f}%[/] on {metrics['samples']:,} test images{views}, "
                  f"macro F1 {metrics['macro_f1']:.4f}")
    table = Table("class", "precision", "recall", "F1", "support")
    for name, row in metrics["per_class"].items():
        table.add_row(name, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", str(row["support"]))
    console.print(table)
    matrix = Table("true \\ pred", *metrics["per_class"].keys(), title="confusion matrix")
    for name, row in zip(metrics["per_class"], metrics["confusion_matrix"]):
        matrix.add_row(name, *[str(v) for v in row])
    console.print(matrix)


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="A finished run directory."),
    images: list[str] = typer.Argument(..., help="Image files (PNG, JPEG, BMP, …) or folders of them."),
    top_k: int = typer.Option(1, "--top-k", min=1, help="Show the K most likely classes."),
    output: Optional[Path] = _opt("Also write a CSV: path, predicted label, probability (and top-k).", "--output"),
    tta: int = typer.Option(1, "--tta", min=1, max=9, help="Average N shifted views per image (test-time augmentation)."),
) -> None:
    """Classify image files with a trained run, using the same preprocessing as training.

    Example: tlearn predict runs/my-run digit.png scans/ --top-k 3 --output predictions.csv
    """
    from rich.console import Console
    from rich.table import Table

    from .inference import find_images, load_run, predict_images, read_images, top_k as best_k
    from .reporting import write_predictions_csv

    run = load_run(run_dir)
    # A single explicit file must be an image; in folders and lists, bad files are skipped and counted.
    paths, decoded, bad = read_images(find_images(images), run.data_channels, skip_bad=len(images) > 1 or Path(images[0]).is_dir())
    if bad:
        print(f"tlearn: warning: skipped {len(bad)} file(s) that are not decodable images (first: {bad[0]})", file=sys.stderr)
    ranked = best_k(predict_images(run, decoded, tta=tta), run.classes, top_k)
    table = Table("image", "prediction", "probability", *(["top-k"] if top_k > 1 else []))
    for path, row in zip(paths, ranked):
        extra = [", ".join(f"{c} {p:.3f}" for c, p in row)] if top_k > 1 else []
        table.add_row(str(path), row[0][0], f"{row[0][1]:.4f}", *extra)
    Console().print(table)
    if output is not None:
        write_predictions_csv(output, paths, ranked)
        Console().print(f"Wrote {len(paths)} predictions to {output}")


class ExportFormat(str, Enum):
    onnx = "onnx"
    torchscript = "torchscript"


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A finished run directory."),
    format: ExportFormat = typer.Option(ExportFormat.onnx, "--format", help="onnx | torchscript."),
    output: Path = typer.Option(..., "--output", help="File to write (e.g. model.onnx)."),
) -> None:
    """Export a trained model; the result is checked against PyTorch before success is reported.

    Example: tlearn export runs/my-run --format onnx --output digits.onnx
    """
    from .export import export_onnx, export_torchscript
    from .inference import load_run

    run = load_run(run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = export_onnx(run, output) if format == ExportFormat.onnx else export_torchscript(run, output)
    print(f"Exported {info['format']} to {info['output']} (max abs diff vs PyTorch {info['max_abs_diff']:.2e})")


def _base_config(preset: Optional[str], config: Optional[Path], data_dir: Optional[str], extra: dict):
    """preset < config file < options; with neither a preset nor a file, the 'default' preset."""
    from .config import resolve_config

    values = {"data_dir": data_dir, **extra}
    return resolve_config(preset if preset or config else "default", config, values)


@app.command("lr-find")
def lr_find(
    preset: Optional[str] = _opt("Preset to start from (default: 'default').", "--preset"),
    config: Optional[Path] = _opt("YAML config file.", "--config"),
    data_dir: Optional[str] = _opt("Dataset root.", "--data-dir"),
    backbone: Optional[str] = _opt("Backbone (as in train).", "--backbone"),
    freeze: Optional[str] = _opt("Freezing (as in train).", "--freeze"),
    min_lr: float = typer.Option(1e-6, "--min-lr", min=0.0),
    max_lr: float = typer.Option(1.0, "--max-lr", min=0.0),
    steps: int = typer.Option(100, "--steps", min=5, help="Batches in the range test."),
    out: Path = typer.Option(Path("runs/lr-find"), "--out", help="Folder for lr_find.png."),
) -> None:
    """Learning-rate range test: a plot of loss against LR and a suggested --lr.

    Example: tlearn lr-find --backbone resnet18 --freeze backbone --out runs/lrf
    """
    from .experiments import lr_find as run_lr_find

    cfg = _base_config(preset, config, data_dir, {"backbone": backbone, "freeze": freeze, "progress": False})
    result = run_lr_find(cfg, out, min_lr, max_lr, steps)
    lr = result["suggested_lr"]
    print(f"Suggested learning rate: {lr:.2e}" if lr else "No clear suggestion; see the plot")
    print(f"Plot: {result['plot']}")


@app.command()
def compare(
    backbones_: str = typer.Option("efficientnet_lite0", "--backbones", help="Comma-separated backbones."),
    init: str = typer.Option("pretrained", "--init", help="Comma-separated: pretrained, random."),
    train_sizes: str = typer.Option("100,1000", "--train-sizes", help="Comma-separated training-set sizes ('all' for all)."),
    freeze: str = typer.Option("backbone", "--freeze", help="Comma-separated freeze settings."),
    preset: Optional[str] = _opt("Preset the grid starts from (default: 'default').", "--preset"),
    config: Optional[Path] = _opt("YAML config the grid starts from.", "--config"),
    data_dir: Optional[str] = _opt("Dataset root.", "--data-dir"),
    epochs: Optional[int] = _opt("Epochs per run.", "--epochs"),
    out: Path = typer.Option(Path("runs/compare"), "--out", help="Folder for the runs and the tables."),
) -> None:
    """Train a grid of configurations and tabulate them (CSV, markdown, accuracy-vs-size plot).

    Example: tlearn compare --backbones efficientnet_lite0,resnet18 --init pretrained,random --train-sizes 100,1000,10000
    """
    from .experiments import compare as run_compare

    def items(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not values:
            raise typer.BadParameter(f"empty list: '{text}'")
        return values

    sizes = [None if s == "all" else int(s) if s.isdigit() else _bad_size(s) for s in items(train_sizes)]
    unknown = [i for i in items(init) if i not in ("pretrained", "random")]
    if unknown:
        raise typer.BadParameter(f"--init takes pretrained and/or random, not '{unknown[0]}'")
    base = _base_config(preset, config, data_dir, {"epochs": epochs})
    rows = run_compare(base, items(backbones_), items(init), sizes, items(freeze), out)
    print(f"{len(rows)} runs; tables: {out / 'compare.csv'}, {out / 'compare.md'}; plot: {out / 'compare.png'}")


def _bad_size(text: str):
    raise typer.BadParameter(f"--train-sizes takes whole numbers or 'all', not '{text}'")


@app.command()
def backbones(
    offline: bool = typer.Option(False, "--offline", help="Only those whose weights are available right now without internet."),
    timm: Optional[str] = _opt("Also list timm models matching this name or pattern (e.g. 'convnext*').", "--timm"),
) -> None:
    """List known backbones: parameters, default image size, and whether weights are available offline.

    Example: tlearn backbones --offline ; tlearn backbones --timm 'efficientnet_b*'
    """
    from rich.console import Console
    from rich.table import Table

    from .catalog import catalog

    table = Table(show_lines=False)
    table.add_column("backbone", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("params (M)", justify="right")
    table.add_column("size", justify="right")
    table.add_column("offline", no_wrap=True)
    table.add_column("weights file / hub id", overflow="fold")
    for e in catalog(timm, offline):
        params = f"{e.params_millions:.1f}" if e.params_millions is not None else "?"
        table.add_row(e.name, e.source, params, str(e.image_size), "yes" if e.offline else "no", e.where)
    Console().print(table)
    print("Any timm model works as timm/<name>; any local state dict as --weights PATH.")


@app.command()
def presets() -> None:
    """List the shipped presets with a one-line description each."""
    from rich.console import Console
    from rich.table import Table

    from .config import preset_summaries

    table = Table("preset", "description", show_lines=False)
    for name, summary in preset_summaries().items():
        table.add_row(name, summary)
    Console().print(table)


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point: user errors become one line on stderr and exit code 2."""
    from .errors import TlearnError

    try:
        app(args=argv, standalone_mode=False)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        print("tlearn: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as err:  # bad flag, wrong type, unknown command
        ctx = getattr(err, "ctx", None)
        if type(err).__name__ == "NoArgsIsHelpError" and ctx is not None:
            print(ctx.get_help())
            sys.exit(0)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        print(f"tlearn: error: {err.format_message()}{where}", file=sys.stderr)
        sys.exit(2)
    except TlearnError as err:
        if DEBUG["on"]:
            raise
        print(f"tlearn: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("tlearn: interrupted before training started; nothing to resume", file=sys.stderr)
        sys.exit(130)
    except OSError as err:  # the machine refused a read or write tlearn did not foresee (I/O error, permissions)
        if DEBUG["on"]:
            raise
        where = f": {err.filename}" if err.filename else ""
        print(f"tlearn: error: {err.strerror or err}{where} (run with --debug for the details)", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
