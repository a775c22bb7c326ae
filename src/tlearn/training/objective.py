"""What one training or validation batch contributes: its loss, accuracy and size.

Shared by the Lightning module and the head loop on cached features (:mod:`.head_loop`), so both
paths compute the same numbers from the same code; nothing here imports Lightning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import NonFiniteLossError


@dataclass
class LossTerms:
    """What shapes a run's training loss besides the model and the batch."""

    mix: Optional[nn.Module] = None  # MixUp/CutMix on the preprocessed batch: labels become class probabilities
    label_smoothing: float = 0.0
    class_weights: Optional[torch.Tensor] = None


def batch_loss(
    model: nn.Module,
    batch,
    train: bool,
    preprocessor=None,
    mix: Optional[nn.Module] = None,
    label_smoothing: float = 0.0,
    class_weights: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(loss, accuracy, size)`` of ``model`` on ``batch = (inputs, labels)``.

    Without a preprocessor the inputs are cached activations, already model-ready. Label
    smoothing, class weights and MixUp/CutMix shape the training loss only; validation scores
    the plain cross-entropy.
    """
    images, labels = batch
    inputs = preprocessor(images, train=train) if preprocessor is not None else images
    targets = labels
    if train and mix is not None:
        inputs, targets = mix(inputs, labels)
    logits = model(inputs)
    smoothing = label_smoothing if train else 0.0
    weight = class_weights if train else None
    loss = F.cross_entropy(logits.float(), targets, weight=weight, label_smoothing=smoothing)
    acc = (logits.argmax(1) == labels).float().mean()
    return loss, acc, labels.shape[0]


def batch_sums(loss: torch.Tensor, acc: torch.Tensor, n: int) -> torch.Tensor:
    """``[loss × n, correct, n]``: added over an epoch's batches, they give its mean loss and accuracy."""
    return torch.stack([loss.detach() * n, acc.detach() * n, loss.new_tensor(float(n))])


def non_finite_loss(value, epoch: int, step: int, checkpointed: bool = True) -> NonFiniteLossError:
    """The error a NaN or infinite loss stops training with (``epoch`` and ``step`` count from 1)."""
    kept = "the last good checkpoint is kept" if checkpointed else "the cached features are kept"
    return NonFiniteLossError(
        f"loss became {value} at epoch {epoch}, step {step}; lower --lr or check the data ({kept})"
    )
