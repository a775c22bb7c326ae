"""``tlearn evaluate``, ``predict`` and ``export``: using a finished run."""

from __future__ import annotations

import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from ..config import RESET
from .app import app, load_stack
from .options import FlagValueError, reset_option

RUN_DIR = typer.Argument(..., help="A finished run directory.")
TTA = typer.Option(1, "--tta", min=1, max=9, help="Average N shifted views per image (test-time augmentation).")


@app.command()
def evaluate(
    run_dir: Path = RUN_DIR,
    data_dir: Optional[Any] = reset_option(
        "--data-dir", str, "default", "Dataset root ('default', the default: the run's, else $TLEARN_DATA_DIR)."
    ),
    test_size: Optional[Any] = reset_option(
        "--test-size",
        int,
        "all",
        "Evaluate on a seeded stratified subset of N test images ('all', the default: every test image).",
    ),
    tta: int = TTA,
) -> None:
    """Re-evaluate a trained run on its test set: accuracy, per-class table, confusion matrix.

    Example: tlearn evaluate runs/20261122-170229-efficientnet_lite0 --test-size 2000
    """
    from rich.console import Console
    from rich.table import Table

    load_stack()
    from ..inference import evaluate_run
    from ..runs.spec import load_run

    given = [None if value is RESET else value for value in (data_dir, test_size)]
    metrics = evaluate_run(load_run(run_dir), *given, tta)
    console = Console()
    views = f" ({tta} test-time views)" if tta > 1 else ""
    console.print(
        f"[bold]Accuracy {100 * metrics['accuracy']:.2f}%[/] on {metrics['samples']:,} test images{views}, "
        f"macro F1 {metrics['macro_f1']:.4f}"
    )
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
    run_dir: Path = RUN_DIR,
    images: list[str] = typer.Argument(..., help="Image files (PNG, JPEG, BMP, …) or folders of them."),
    top_k: int = typer.Option(1, "--top-k", min=1, help="Show the K most likely classes."),
    output: Optional[Path] = typer.Option(
        None, "--output", help="Also write a CSV: path, predicted label, probability (and top-k)."
    ),
    tta: int = TTA,
) -> None:
    """Classify image files with a trained run, using the same preprocessing as training.

    Example: tlearn predict runs/my-run digit.png scans/ --top-k 3 --output predictions.csv
    """
    from rich.console import Console
    from rich.table import Table

    from ..data.images import find_images, read_images

    load_stack()
    from ..inference import predict_images, write_predictions_csv
    from ..inference import top_k as best_k
    from ..runs.spec import load_run

    run = load_run(run_dir)
    # A single explicit file must be an image; in folders and lists, bad files are skipped and counted.
    skip_bad = len(images) > 1 or Path(images[0]).is_dir()
    # Decoded as the run's images were: at its working size.
    side = run.preprocessing.working_side
    paths, decoded, bad = read_images(find_images(images), run.data_channels, skip_bad=skip_bad, short_side=side)
    if bad:
        print(
            f"tlearn: warning: skipped {len(bad)} file(s) that are not decodable images (first: {bad[0]})",
            file=sys.stderr,
        )
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
    """What ``tlearn export`` writes: one ONNX or TorchScript file, or a timm model folder."""

    onnx = "onnx"
    torchscript = "torchscript"
    timm = "timm"


EXTENSIONS = {ExportFormat.onnx: "onnx", ExportFormat.torchscript: "pt"}


def _export_target(format: ExportFormat, output: Optional[Path], out: Optional[Path]) -> Path:
    """Where an export goes: ``--output FILE`` for the one-file formats, ``--out DIR`` for timm's folder."""
    if format is ExportFormat.timm:
        if output is not None:
            raise FlagValueError("--format timm writes a folder: give it as --out DIR, not --output")
        if out is None:
            raise FlagValueError("--format timm needs --out DIR (the model folder to write)")
        return out
    if out is not None:
        raise FlagValueError(f"--format {format.value} writes one file: give it as --output FILE, not --out")
    if output is None:
        raise FlagValueError(f"--format {format.value} needs --output FILE (e.g. model.{EXTENSIONS[format]})")
    return output


@app.command()
def export(
    run_dir: Path = RUN_DIR,
    format: ExportFormat = typer.Option(
        ExportFormat.onnx, "--format", help="onnx | torchscript | timm (a folder timm and the Hugging Face Hub load)."
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", help="File to write for --format onnx or torchscript (e.g. model.onnx)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder to write for --format timm."),
) -> None:
    """Export a trained model; the result is checked against PyTorch before success is reported.

    Example: tlearn export runs/my-run --format onnx --output digits.onnx ;
    tlearn export runs/my-run --format timm --out digits-timm
    """
    target = _export_target(format, output, out)
    load_stack()
    from ..runs.export import export_onnx, export_torchscript
    from ..runs.spec import load_run
    from ..runs.timm_export import export_timm

    run = load_run(run_dir)
    exporters = {
        ExportFormat.onnx: export_onnx,
        ExportFormat.torchscript: export_torchscript,
        ExportFormat.timm: export_timm,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = exporters[format](run, target)
    print(f"Exported {info['format']} to {info['output']} (max abs diff vs PyTorch {info['max_abs_diff']:.2e})")
