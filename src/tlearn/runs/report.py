"""``report.html``: one self-contained page per run (plots embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import io
import platform
from pathlib import Path

import torch

from ..fileio import atomic_write_text
from .plots import pyplot

STYLE = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th{background:#f3f3f3}td.k{text-align:left}img{max-width:100%}h2{border-bottom:1px solid #ddd}
.big{font-size:1.6em;font-weight:600}"""


def _png(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii") if path.is_file() else ""
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">' if data else ""


def misclassified_grid(split, logits: torch.Tensor, n: int = 24) -> bytes:
    """PNG of the ``n`` most confidently wrong test images with true/predicted labels.

    The images are tiled into one picture and drawn on one set of axes: a figure with a
    subplot per image costs about a second, this a fraction of it.
    """
    plt = pyplot()
    labels, classes = split.labels, split.classes
    probs = torch.softmax(logits, 1)
    confidence, predicted = probs.max(1)
    wrong = (predicted != labels).nonzero().flatten()
    order = wrong[torch.argsort(confidence[wrong], descending=True)][:n].tolist()
    cols = 8
    rows = max(1, (len(order) + cols - 1) // cols)
    fig, ax = plt.subplots(figsize=(cols * 1.3, rows * 1.55))
    ax.axis("off")
    if order:
        tiles, side = _tiles([split.item(i) for i in order])
        pad, gap = side // 2, max(2, side // 10)  # room for the two caption lines; white space between tiles
        width = side + gap
        canvas = torch.ones(rows * (side + pad), cols * width, 3)
        for k, (i, tile) in enumerate(zip(order, tiles)):
            r, c = divmod(k, cols)
            canvas[r * (side + pad) + pad : (r + 1) * (side + pad), c * width : c * width + side] = tile
            caption = f"true {classes[labels[i]]}\npred {classes[predicted[i]]} {confidence[i]:.2f}"
            ax.text(c * width + side / 2, r * (side + pad) + pad * 0.9, caption, fontsize=7, ha="center", va="bottom")
        ax.imshow(canvas.numpy(), interpolation="nearest")
    else:
        ax.text(0, 0.5, "no misclassified test images", fontsize=9)
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
    import lightning
    import timm
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "lightning": lightning.__version__,
        "platform": platform.platform(),
        "cpu threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }


def write_report(run_dir: Path, config: dict, metrics: dict, grid_png: bytes) -> Path:
    """Assemble ``report.html`` from the run's files and metrics."""
    grid = base64.b64encode(grid_png).decode("ascii")
    per_class = [
        [name, f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"]]
        for name, r in metrics["per_class"].items()
    ]
    timing = [
        ["training", f"{metrics['train_seconds']:.1f} s"],
        ["test evaluation", f"{metrics['eval_seconds']:.1f} s"],
        ["total", f"{metrics.get('total_seconds', 0):.1f} s"],
        ["device", metrics["device"]],
        [
            "feature cache",
            "used (" + str(metrics["feature_cache"].get("boundary")) + ")"
            if metrics["feature_cache"].get("used")
            else "not used: " + metrics["feature_cache"].get("reason", ""),
        ],
    ]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>tlearn report: {html.escape(run_dir.name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>tlearn run {html.escape(run_dir.name)}</h1>",
        f"<p class='big'>Test accuracy {100 * metrics['test_accuracy']:.2f}% "
        f"on {metrics['test_samples']:,} test images</p>",
        f"<p>{metrics['train_samples']:,} training images, {metrics['epochs']} epochs, seed {metrics['seed']}, "
        f"backbone {html.escape(metrics['backbone'])} "
        f"({html.escape(metrics['weights'])} weights, freeze {html.escape(metrics['freeze'])}); "
        f"validation: {metrics['val_source']} "
        f"({metrics['val_samples']} images, reported separately from the test figure).</p>",
        "<h2>Learning curves</h2>",
        _png(run_dir / "accuracy.png"),
        _png(run_dir / "loss.png"),
        "<h2>Confusion matrix (test set)</h2>",
        _png(run_dir / "confusion_matrix.png"),
        "<h2>Per-class metrics (test set)</h2>",
        _table(per_class, ["class", "precision", "recall", "F1", "support"]),
        "<h2>Most confidently misclassified test images</h2>",
        f'<img alt="misclassified" src="data:image/png;base64,{grid}">',
        "<h2>Timing</h2>",
        _table(timing, ["", ""]),
        "<h2>Configuration</h2>",
        _table([[k, v] for k, v in config.items()], ["option", "value"]),
        "<h2>Environment</h2>",
        _table([[k, v] for k, v in environment().items()], ["", ""]),
        "</body></html>",
    ]
    path = run_dir / "report.html"
    atomic_write_text(path, "\n".join(parts))
    return path
