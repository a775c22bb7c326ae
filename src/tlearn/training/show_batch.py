"""``tlearn show-batch``: a grid of training inputs as the model receives them.

The quickest check that augmentation and preprocessing are sane: the images go through the run's
own data path (splits, batch preprocessing with augmentation, MixUp/CutMix), and are then mapped
back from normalised values to pixels for display.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from ..config import TrainConfig
from ..data.augment import BatchPreprocessor, batch_mix
from ..fileio import atomic_write_bytes
from ..runs.plots import pyplot
from .distributed import launch_environment
from .run import prepare_data


def _pixels(inputs: torch.Tensor, prep) -> torch.Tensor:
    """Normalised model inputs back to displayable ``[N, H, W, 3]`` values in [0, 1]."""
    mean = torch.tensor(prep.mean).view(1, -1, 1, 1)
    std = torch.tensor(prep.std).view(1, -1, 1, 1)
    x = (inputs.float() * std + mean).clamp(0, 1)
    return x.expand(-1, 3, -1, -1).permute(0, 2, 3, 1) if x.shape[1] == 1 else x.permute(0, 2, 3, 1)


def show_batch(config: TrainConfig, output: Path, count: int = 32) -> Path:
    """Write a PNG grid of ``count`` training inputs (augmented as in training) with their labels."""
    with launch_environment():
        _, preprocessing, splits = prepare_data(config)
        train = splits.train
        # A seeded random sample: the split itself may be ordered by class.
        picked = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.seed))[:count].tolist()
        images = torch.stack([train.item(i) for i in picked])
        labels = train.labels[picked]
        inputs = BatchPreprocessor(preprocessing, config.augment, config.seed)(images, train=True)
        mix = batch_mix(config.mixup, config.cutmix, len(train.classes))
        targets = None
        if mix is not None:
            inputs, targets = mix(inputs, labels)
    _draw(_pixels(inputs, preprocessing), labels, targets, train.classes, output)
    return output


def _caption(i: int, labels: torch.Tensor, targets, classes: list[str]) -> str:
    if targets is None:
        return classes[int(labels[i])]
    top = targets[i].topk(min(2, targets.shape[1]))
    return " + ".join(f"{classes[int(c)]} {float(p):.2f}" for p, c in zip(*top) if p > 0.005)


def _draw(pixels: torch.Tensor, labels: torch.Tensor, targets, classes: list[str], output: Path) -> None:
    plt = pyplot()
    cols = min(8, max(1, len(pixels)))
    rows = max(1, (len(pixels) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.8), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(pixels):
            ax.imshow(pixels[k].numpy(), interpolation="nearest")
            ax.set_title(_caption(k, labels, targets, classes), fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(output, buffer.getvalue())
