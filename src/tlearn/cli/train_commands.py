"""``tlearn train``, ``lr-find`` and ``compare``: every config option, plus each command's own."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app, load_stack, resolve_base_config
from .options import FlagValueError, flag, with_config_options

PRESET = typer.Option(None, "--preset", help="Start from a shipped preset (see 'tlearn presets'); flags override it.")
CONFIG = typer.Option(None, "--config", help="YAML config file; flags override it.")
DRY_RUN_SIZES = {"epochs": 1, "train_size": 64, "test_size": 64, "val_size": 32}


@app.command()
@with_config_options()
def train(
    overrides: dict,
    preset: Optional[str] = PRESET,
    config: Optional[Path] = CONFIG,
    dry_run: bool = typer.Option(False, "--dry-run", help="Tiny end-to-end run: 1 epoch, 64 train / 64 test images."),
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue an interrupted run directory from its last finished epoch."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run already in the --out directory."),
) -> None:
    """Fine-tune a pretrained backbone and write a run directory (metrics, plots, model).

    Examples:\n
      tlearn train                                  # EfficientNet-Lite0 on 1,000 MNIST digits\n
      tlearn train --preset seed000-vgg16           # seed 000, reproduced\n
      tlearn train --backbone resnet18 --freeze backbone --epochs 5\n
      tlearn train --devices 2 --strategy ddp          # two processes (DDP)
    """
    given = [flag(k) for k in overrides] + (["--preset"] if preset else []) + (["--config"] if config else [])
    if resume is not None and given:
        raise typer.BadParameter(f"--resume uses the run's saved config; drop {given[0]}")
    load_stack(plots=True)
    if resume is not None:
        from ..training.pipeline import resume as resume_run

        print_summary(resume_run(resume))
        return
    if dry_run:  # tiny sizes, unless given explicitly
        overrides = {**DRY_RUN_SIZES, **overrides}
    from ..runtime import counting_from_process_start
    from ..training.pipeline import train as run_training

    with counting_from_process_start():  # --time-budget covers the whole command
        result = run_training(resolve_base_config(preset, config, overrides), overwrite=overwrite)
    print_summary(result)


def print_summary(result) -> None:
    """The console summary of a finished run."""
    from rich.console import Console

    if result is None:  # a DDP rank other than 0: rank 0 reports
        return
    record = result.record
    balanced = record.balanced_accuracy
    console = Console()
    console.print(
        f"[bold green]Test accuracy {100 * record.test_accuracy:.2f}%[/] on {record.test_samples:,} test images "
        f"({record.train_samples:,} training images, {record.epochs} epochs, seed {record.seed})"
        + (f"; balanced accuracy {100 * balanced:.2f}%" if balanced is not None else "")
    )
    from ..runs.report import device_label, kept_model

    if record.keep in ("best", "ema") or record.stopped_early:
        console.print(f"Model from {kept_model(record)}")
    if record.skipped_files:
        console.print(f"Skipped {record.skipped_files} file(s) that are not decodable images (see metrics.json)")
    if record.tta_views > 1 and record.test_accuracy_single_view is not None:
        console.print(
            f"Test-time augmentation: {record.tta_views} views; one view alone gives "
            f"{100 * record.test_accuracy_single_view:.2f}%"
        )
    if record.final_val_accuracy is not None:
        console.print(
            f"Validation accuracy (last epoch, {record.val_source}, {record.val_samples:,} images): "
            f"{100 * record.final_val_accuracy:.2f}%"
        )
    console.print(
        f"Training time {record.train_seconds:.1f} s, total {record.total_seconds:.1f} s on {device_label(record)}"
    )
    console.print(f"Run directory: {result.run_dir}")


@app.command("lr-find")
@with_config_options(exclude=("out",))
def lr_find(
    overrides: dict,
    preset: Optional[str] = PRESET,
    config: Optional[Path] = CONFIG,
    min_lr: float = typer.Option(1e-6, "--min-lr", min=0.0, help="Lowest LR of the range."),
    max_lr: float = typer.Option(1.0, "--max-lr", min=0.0, help="Highest LR of the range."),
    steps: int = typer.Option(100, "--steps", min=5, help="Batches in the range test."),
    out: Path = typer.Option(Path("runs/lr-find"), "--out", help="Folder for lr_find.png."),
) -> None:
    """Learning-rate range test: a plot of loss against LR and a suggested --lr.

    Example: tlearn lr-find --backbone resnet18 --freeze backbone --out runs/lrf
    """
    load_stack(plots=True)
    from ..training.lr_find import lr_find as run_lr_find

    base = resolve_base_config(preset, config, {"progress": False, **overrides})
    result = run_lr_find(base, out, min_lr, max_lr, steps)
    lr = result["suggested_lr"]
    print(f"Suggested learning rate: {lr:.2e}" if lr else "No clear suggestion; see the plot")
    print(f"Plot: {result['plot']}")


def _items(text: str, option: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise FlagValueError(f"{option} takes a comma-separated list, not '{text}'")
    return values


def _grid(backbones: str, init: str, train_sizes: str, freezes: str) -> tuple[list, list, list, list]:
    """compare's lists, checked before anything loads: backbones, inits, sizes (None: all), freeze settings."""
    from ..config import FreezeSpec

    inits = _items(init, "--init")
    unknown = [i for i in inits if i not in ("pretrained", "random")]
    if unknown:
        raise FlagValueError(f"--init takes pretrained and/or random, not '{unknown[0]}'")
    sizes = _items(train_sizes, "--train-sizes")
    bad_size = next((s for s in sizes if s != "all" and not s.isdigit()), None)
    if bad_size is not None:
        raise FlagValueError(f"--train-sizes takes whole numbers or 'all', not '{bad_size}'")
    settings = _items(freezes, "--freezes")
    for item in settings:
        try:
            FreezeSpec.parse(item)
        except ValueError:
            raise FlagValueError(f"--freezes takes backbone, none or until:<stage>, not '{item}'") from None
    return _items(backbones, "--backbones"), inits, [None if s == "all" else int(s) for s in sizes], settings


@app.command()
@with_config_options(exclude=("backbone", "weights", "freeze", "train_size", "out"))
def compare(
    overrides: dict,
    backbones: str = typer.Option("efficientnet_lite0", "--backbones", help="Comma-separated backbones."),
    init: str = typer.Option("pretrained", "--init", help="Comma-separated: pretrained, random."),
    train_sizes: str = typer.Option("100,1000", "--train-sizes", help="Comma-separated training-set sizes ('all')."),
    freezes: str = typer.Option(
        "backbone", "--freezes", help="Comma-separated --freeze settings (backbone, none, until:<stage>)."
    ),
    preset: Optional[str] = typer.Option(None, "--preset", help="Preset the grid starts from (default: 'default')."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config the grid starts from."),
    out: Path = typer.Option(Path("runs/compare"), "--out", help="Folder for the runs and the tables."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a comparison already in --out."),
) -> None:
    """Train a grid of configurations and tabulate them (CSV, markdown, accuracy-vs-size plot).

    Train options set the grid's base configuration; the grid sets each run's backbone, weights, freezing and size.

    Example: tlearn compare --backbones efficientnet_lite0,resnet18 --init pretrained,random --train-sizes 100,1000
    --freezes backbone,none
    """
    grid = _grid(backbones, init, train_sizes, freezes)
    load_stack(plots=True)
    from ..training.compare import compare as run_compare

    base = resolve_base_config(preset, config, overrides)
    rows = run_compare(base, *grid, out, overwrite=overwrite)
    print(f"{len(rows)} runs; tables: {out / 'compare.csv'}, {out / 'compare.md'}; plot: {out / 'compare.png'}")


@app.command("show-batch")
@with_config_options(exclude=("out",))
def show_batch(
    overrides: dict,
    preset: Optional[str] = PRESET,
    config: Optional[Path] = CONFIG,
    output: Path = typer.Option(Path("batch.png"), "--output", help="PNG file to write."),
    count: int = typer.Option(32, "--count", min=1, max=256, help="Training images to show."),
) -> None:
    """Write a grid of training inputs as the model receives them (augmented, normalised, mixed).

    Example: tlearn show-batch --data-dir photos/ --output batch.png
    """
    load_stack(plots=True)
    from ..training.show_batch import show_batch as draw

    base = resolve_base_config(preset, config, overrides)
    print(f"Wrote {draw(base, output, count)}")
