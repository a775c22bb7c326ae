"""Inference over a split and the classification metrics reported for it."""

from __future__ import annotations

import copy
import itertools
from contextlib import nullcontext
from typing import Optional

import torch
from torch import nn

from .data import ImageSplit
from .transforms import BatchPreprocessor, tta_shifts
from .utils import eval_mode


def inference_batch_size(device: str | torch.device) -> int:
    """Batch size for inference. On CPU small batches stay in cache: EfficientNet-Lite0 at 96 px
    ran 411 images/s at 64 against 239 at 256 on the 2-core reference machine; GPUs want more."""
    return 64 if torch.device(device).type == "cpu" else 512


# Folding BatchNorm into convolutions only pays for its copy of the model on larger inputs.
FOLD_MIN_SAMPLES = 256


@torch.inference_mode()
def batched_inference(
    model: nn.Module,
    preprocessor: Optional[BatchPreprocessor],
    source,
    batch_size: Optional[int] = None,
    device: str | torch.device = "cpu",
    autocast_dtype: Optional[torch.dtype] = None,
    tta: int = 1,
    fold: bool = True,
    single_view: bool = False,
):
    """Model outputs (float32, on CPU) for a split's images (or a tensor), in batches.

    ``preprocessor=None`` feeds the tensors as they are (cached activations). With ``fold`` and
    256 samples or more it runs a BatchNorm-folded copy of the model when that copy checks out
    (see :func:`folded_copy`); ``model`` itself is never changed. ``tta`` > 1 averages the class
    probabilities of that many shifted views (:func:`~tlearn.transforms.tta_shifts`) and returns
    their log, so softmax and argmax downstream see the averaged prediction. ``single_view``
    also returns the unshifted view's outputs, from the same pass: ``(outputs, single)``.
    """
    device = torch.device(device)
    batch_size = batch_size or inference_batch_size(device)
    batches = source.batches(batch_size) if hasattr(source, "batches") else source.split(batch_size)
    shifts = tta_shifts(tta) if preprocessor is not None else [None]
    inputs = ([preprocessor(batch.to(device, non_blocking=True), train=False, shift=s) for s in shifts]
              if preprocessor is not None else [batch.to(device, non_blocking=True)] for batch in batches)
    averaged, single = [], []
    with eval_mode(model):
        first = next(inputs, None)
        large = first is not None and len(source) >= FOLD_MIN_SAMPLES
        runner = folded_copy(model, first[0][:8]) if fold and large else model
        autocast = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else nullcontext()
        with autocast:
            for views in itertools.chain([first] if first is not None else [], inputs):
                outputs = [runner(v).float() for v in views]
                single.append(outputs[0].cpu())
                if len(outputs) > 1:
                    averaged.append(mean_probabilities(outputs).clamp_min(1e-12).log().cpu())
    single = torch.cat(single) if single else torch.empty(0)
    result = torch.cat(averaged) if averaged else single
    return (result, single) if single_view else result


def mean_probabilities(view_outputs: list[torch.Tensor]) -> torch.Tensor:
    """The class probabilities of several views of the same images, averaged."""
    return torch.stack([torch.softmax(out.float(), dim=1) for out in view_outputs]).mean(0)


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every eval-mode BatchNorm into the convolution just before it, in place; returns the count.

    ``BN(conv(x))`` with fixed statistics is one affine map per channel, so it can be merged
    into the convolution's weights and bias: one pass over the activations less per layer.
    "Just before" means the previous sibling in the module's child order, which is how
    torchvision and timm declare their conv-BN pairs; :func:`folded_copy` checks the result
    against the original network and discards it if they disagree.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    count = 0
    children = list(module.named_children())
    for (_, conv), (bn_name, bn) in zip(children, children[1:]):
        if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None
                and conv.out_channels == bn.num_features):
            weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                                bn.weight, bn.bias)
            conv.weight, conv.bias = weight, bias
            # timm's BatchNormAct2d also holds the activation (and dropout) that follow the norm.
            rest = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if isinstance(m, nn.Module)]
            setattr(module, bn_name, nn.Sequential(*rest) if rest else nn.Identity())
            count += 1
    for _, child in children:
        count += fold_batchnorm(child)
    return count


@torch.inference_mode()
def folded_copy(model: nn.Module, probe: torch.Tensor) -> nn.Module:
    """An eval-mode copy of ``model`` with BatchNorm folded in, if it gives the same outputs; else ``model``.

    Folding makes CNN inference about 1.3-1.6x faster on the CPU. The copy must match the
    original on ``probe`` (a few real inputs) to float rounding, 1e-4 of the outputs' scale.
    """
    if not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        return model
    fast = copy.deepcopy(model).eval()
    if fold_batchnorm(fast) == 0:
        return model
    with eval_mode(model):  # modules shared with a trainable top keep their mode
        reference, candidate = model(probe).float(), fast(probe).float()
    scale = reference.abs().max().item() or 1.0
    return fast if (reference - candidate).abs().max().item() <= 1e-4 * scale else model


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[true, predicted]`` counts."""
    index = labels.long() * num_classes + predictions.long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_metrics(labels: torch.Tensor, logits: torch.Tensor, classes: list[str]) -> dict:
    """Accuracy, loss, confusion matrix and per-class precision/recall/F1 (fractions)."""
    predictions = logits.argmax(1)
    matrix = confusion_matrix(labels, predictions, len(classes))
    true_pos = matrix.diag().double()
    predicted = matrix.sum(0).double()
    actual = matrix.sum(1).double()
    precision = torch.where(predicted > 0, true_pos / predicted.clamp(min=1), torch.zeros_like(true_pos))
    recall = torch.where(actual > 0, true_pos / actual.clamp(min=1), torch.zeros_like(true_pos))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(denom))
    per_class = {
        name: {"precision": round(float(p), 6), "recall": round(float(r), 6), "f1": round(float(f), 6), "support": int(s)}
        for name, p, r, f, s in zip(classes, precision, recall, f1, actual)
    }
    return {
        "accuracy": float((predictions == labels).double().mean()) if labels.numel() else 0.0,
        "loss": float(nn.functional.cross_entropy(logits, labels)) if labels.numel() else 0.0,
        "samples": int(labels.numel()),
        "macro_f1": float(f1.mean()),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def evaluate_split(
    model: nn.Module, preprocessor: BatchPreprocessor, split: ImageSplit, device="cpu", batch_size: Optional[int] = None,
    autocast_dtype: Optional[torch.dtype] = None, tta: int = 1,
) -> dict:
    """Metrics of ``model`` on a whole split (``tta``: test-time views, see :func:`batched_inference`)."""
    logits = batched_inference(model, preprocessor, split, batch_size, device, autocast_dtype, tta)
    return classification_metrics(split.labels, logits, split.classes)
