"""``report.html``: one self-contained page per run (plots embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import io
import platform
from pathlib import Path

import torch

from ..fileio import atomic_write_text
from ..runtime import cpu_model
from .plots import pyplot
from .record import RunRecord

STYLE = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th{background:#f3f3f3}td.k{text-align:left}img{max-width:100%}h2{border-bottom:1px solid #ddd}
.big{font-size:1.6em;font-weight:600}"""


def _png(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii") if path.is_file() else ""
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">' if data else ""


def top_losses(labels: torch.Tensor, logits: torch.Tensor, n: int = 12) -> list[dict]:
    """The ``n`` test images the model is most wrong about (highest cross-entropy loss), as fastai's
    ``ClassificationInterpretation.top_losses``: index, true and predicted class, probabilities, loss."""
    probs = torch.softmax(logits.float(), 1)
    losses = torch.nn.functional.cross_entropy(logits.float(), labels, reduction="none")
    order = torch.argsort(losses, descending=True)[:n].tolist()
    return [
        {
            "index": i,
            "true": int(labels[i]),
            "predicted": int(probs[i].argmax()),
            "p_predicted": float(probs[i].max()),
            "p_true": float(probs[i, labels[i]]),
            "loss": float(losses[i]),
        }
        for i in order
    ]


def confused_pairs(matrix: list[list[int]], classes: list[str], n: int = 10) -> list[tuple[str, str, int]]:
    """The ``n`` most frequent (true, predicted) mistakes, most frequent first."""
    pairs = [(classes[t], classes[p], count) for t, row in enumerate(matrix) for p, count in enumerate(row) if t != p]
    return sorted((pair for pair in pairs if pair[2] > 0), key=lambda pair: -pair[2])[:n]


def top_losses_grid(split, logits: torch.Tensor, n: int = 24) -> bytes:
    """PNG of the ``n`` highest-loss test images, captioned with true and predicted class, the
    predicted probability and the loss. The images are tiled into one picture on one set of axes:
    a figure with a subplot per image costs about a second, this a fraction of it."""
    plt = pyplot()
    rows_data = top_losses(split.labels, logits, n)
    classes, cols = split.classes, 8
    rows = max(1, (len(rows_data) + cols - 1) // cols)
    fig, ax = plt.subplots(figsize=(cols * 1.3, rows * 1.7))
    ax.axis("off")
    if rows_data:
        tiles, side = _tiles([split.item(r["index"]) for r in rows_data])
        pad, gap = side * 2 // 3, max(2, side // 10)  # room for three caption lines; white space between tiles
        width = side + gap
        canvas = torch.ones(rows * (side + pad), cols * width, 3)
        for k, (r, tile) in enumerate(zip(rows_data, tiles)):
            row, col = divmod(k, cols)
            canvas[row * (side + pad) + pad : (row + 1) * (side + pad), col * width : col * width + side] = tile
            predicted = f"{classes[r['predicted']]} {r['p_predicted']:.2f}"
            caption = f"true {classes[r['true']]}\npred {predicted}\nloss {r['loss']:.2f}"
            ax.text(
                col * width + side / 2, row * (side + pad) + pad * 0.95, caption, fontsize=7, ha="center", va="bottom"
            )
        ax.imshow(canvas.numpy(), interpolation="nearest")
    else:
        ax.text(0, 0.5, "no test images", fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _tiles(images: list[torch.Tensor]) -> tuple[list[torch.Tensor], int]:
    """uint8 ``[C, H, W]`` images as float RGB ``[side, side, 3]`` tiles in [0, 1], one common size."""
    side = max(max(img.shape[-2:]) for img in images)
    side = min(max(side, 28), 96)
    tiles = []
    for img in images:
        img = img.float().div(255)
        img = img.expand(3, -1, -1) if img.shape[0] == 1 else img[:3]
        img = torch.nn.functional.interpolate(img[None], size=(side, side), mode="bilinear", align_corners=False)[0]
        tiles.append(img.clamp(0, 1).permute(1, 2, 0))
    return tiles, side


KEPT = {"best": "the lowest validation loss", "last": "the last epoch", "ema": "the average of the weights (EMA)"}


def kept_model(record: RunRecord) -> str:
    """Which weights the run's model is, in words (for the console summary and the report)."""
    if record.model_epoch is None:  # older runs do not say
        return ""
    stopped = "; training stopped early" if record.stopped_early else ""
    return f"epoch {record.model_epoch} of {record.epochs} ({KEPT.get(record.keep, record.keep)}{stopped})"


def _model_epoch(record: RunRecord) -> str:
    return f"The model is the one from {kept_model(record)}." if record.model_epoch is not None else ""


def _balanced_accuracy(record: RunRecord) -> str:
    if record.balanced_accuracy is None:  # older runs lack it
        return ""
    return f"Balanced accuracy (mean per-class recall) {100 * record.balanced_accuracy:.2f}%. "


def _table(rows: list[list], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"k" if j == 0 else ""}">{html.escape(str(c))}</td>' for j, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def environment() -> dict:
    """The versions and machine a run used. Package versions come from their metadata: importing
    Lightning only to read its version would cost a run that trained without it the whole import."""
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "timm": version("timm"),
        "lightning": version("lightning"),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }


def _header(run_dir: Path, record: RunRecord) -> list[str]:
    name = html.escape(run_dir.name)
    return [
        f"<!doctype html><html><head><meta charset='utf-8'><title>tlearn report: {name}</title>"
        f"<style>{STYLE}</style></head><body>",
        f"<h1>tlearn run {name}</h1>",
        f"<p class='big'>Test accuracy {100 * record.test_accuracy:.2f}% on {record.test_samples:,} test images</p>",
        f"<p>{_balanced_accuracy(record)}{_model_epoch(record)}</p>",
        f"<p>{record.train_samples:,} training images, {record.epochs} epochs, seed {record.seed}, "
        f"backbone {html.escape(record.backbone)} ({html.escape(record.weights)} weights, "
        f"freeze {html.escape(record.freeze)}); validation: {html.escape(record.val_source)} "
        f"({record.val_samples} images, reported separately from the test figure).</p>",
    ]


def _mistakes(record: RunRecord, split, logits: torch.Tensor) -> list[str]:
    classes = split.classes
    pairs = [[t, p, c] for t, p, c in confused_pairs(record.confusion_matrix, classes)]
    losses = [
        [
            r["index"],
            classes[r["true"]],
            classes[r["predicted"]],
            f"{r['p_predicted']:.3f}",
            f"{r['p_true']:.3f}",
            f"{r['loss']:.3f}",
        ]
        for r in top_losses(split.labels, logits)
    ]
    grid = base64.b64encode(top_losses_grid(split, logits)).decode("ascii")
    return [
        "<h2>Most confused classes (test set)</h2>",
        _table(pairs, ["true", "predicted as", "images"]) if pairs else "<p>No mistakes.</p>",
        "<h2>Top losses (test set)</h2>",
        f'<img alt="top losses" src="data:image/png;base64,{grid}">',
        _table(losses, ["test image", "true", "predicted", "p(predicted)", "p(true)", "loss"]),
    ]


def _timing(record: RunRecord) -> list[list]:
    cache = record.feature_cache
    used = f"used ({cache.boundary})" if cache.used else f"not used: {cache.reason}"
    return [
        ["training", f"{record.train_seconds:.1f} s"],
        ["test evaluation", f"{record.eval_seconds:.1f} s"],
        ["total", f"{record.total_seconds:.1f} s"],
        ["device", device_label(record)],
        ["feature cache", used],
    ]


def device_label(record: RunRecord) -> str:
    """The device, with the machine a run's timings were taken on: "cpu (AMD EPYC)" (older runs lack it)."""
    where = record.machine
    named = where and (where.accelerator or where.cpu)
    return f"{record.device} ({named})" if named else record.device


def write_report(run_dir: Path, config: dict, record: RunRecord, test_split, test_logits: torch.Tensor) -> Path:
    """Assemble ``report.html`` from the run's files, its record and its test predictions."""
    per_class = [
        [name, f"{scores.precision:.4f}", f"{scores.recall:.4f}", f"{scores.f1:.4f}", scores.support]
        for name, scores in record.per_class.items()
    ]
    parts = [
        *_header(run_dir, record),
        "<h2>Learning curves</h2>",
        _png(run_dir / "accuracy.png"),
        _png(run_dir / "loss.png"),
        "<h2>Confusion matrix (test set): counts, and shares of each true class</h2>",
        _png(run_dir / "confusion_matrix.png"),
        "<h2>Per-class metrics (test set)</h2>",
        _table(per_class, ["class", "precision", "recall", "F1", "support"]),
        *_mistakes(record, test_split, test_logits),
        "<h2>Timing</h2>",
        _table(_timing(record), ["", ""]),
        "<h2>Configuration</h2>",
        _table([[k, v] for k, v in config.items()], ["option", "value"]),
        "<h2>Environment</h2>",
        _table([[k, v] for k, v in environment().items()], ["", ""]),
        "</body></html>",
    ]
    path = run_dir / "report.html"
    atomic_write_text(path, "\n".join(parts))
    return path
