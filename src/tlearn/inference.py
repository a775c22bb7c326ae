"""Running a model on images: batched inference (with BatchNorm folding and test-time views),
``predict`` on image files, and re-evaluating a finished run on its test set.

Everything goes through the run's :class:`~tlearn.data.preprocessing.Preprocessing`, so an image
file of any size or mode is classified exactly as the test set was.
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .data.augment import BatchPreprocessor, tta_shifts
from .data.preprocessing import eval_view
from .errors import RunError
from .fileio import atomic_write_text
from .runs.metrics import classification_metrics
from .runs.spec import LoadedRun
from .runtime import BatchSizeTuner, eval_mode, inference_batch_size

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
    tuner: Optional[BatchSizeTuner] = None,
):
    """Model outputs (float32, on CPU) for a split's images (or a tensor), in batches.

    ``preprocessor=None`` feeds the tensors as they are (cached activations). With ``fold`` and
    256 samples or more it runs a BatchNorm-folded copy of the model when that copy checks out
    (see :func:`folded_copy`); ``model`` itself is never changed. ``tta`` > 1 averages the class
    probabilities of that many shifted views (:func:`~tlearn.data.augment.tta_shifts`) and returns
    their log, so softmax and argmax downstream see the averaged prediction. ``single_view``
    also returns the unshifted view's outputs, from the same pass: ``(outputs, single)``.
    Without ``batch_size``, a large evaluation on the CPU tunes its batch size as it goes
    (:class:`~tlearn.runtime.BatchSizeTuner`); ``tuner`` carries one search over several calls.
    """
    device = torch.device(device)
    if batch_size is not None or device.type != "cpu":
        tuner = None  # an explicit batch size, or a GPU: nothing to search
    elif tuner is None and len(source) >= BatchSizeTuner.MIN_SAMPLES:
        tuner = BatchSizeTuner()
    batch_size = BatchSizeTuner.BASE if tuner else batch_size or inference_batch_size(device)
    batches = source.batches(batch_size) if hasattr(source, "batches") else source.split(batch_size)
    batches = tuner.regroup(batches) if tuner else batches
    shifts = tta_shifts(tta) if preprocessor is not None else [None]
    inputs = (
        [preprocessor(batch.to(device, non_blocking=True), train=False, shift=s) for s in shifts]
        if preprocessor is not None
        else [batch.to(device, non_blocking=True)]
        for batch in batches
    )
    averaged, single = OutputRows(len(source)), OutputRows(len(source))
    with eval_mode(model):
        first = next(inputs, None)
        large = first is not None and len(source) >= FOLD_MIN_SAMPLES
        runner = folded_copy(model, first[0][:8]) if fold and large else model
        autocast = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else nullcontext()
        with autocast:
            for views in itertools.chain([first] if first is not None else [], inputs):
                started = time.perf_counter()
                outputs = [runner(v).float() for v in views]
                if tuner is not None:
                    tuner.record(len(views[0]), time.perf_counter() - started)
                single.add(outputs[0])
                if len(outputs) > 1:
                    averaged.add(mean_probabilities(outputs).clamp_min(1e-12).log())
    single = single.result()
    result = averaged.result() if averaged.filled else single
    return (result, single) if single_view else result


class OutputRows:
    """Batch outputs copied, as they come, into one tensor on the CPU allocated for all ``total`` rows.

    A list of batches joined by ``torch.cat`` at the end holds every output twice at that moment,
    and the freed batches stay in the allocator: extracting 60,000 cached Lite0 feature vectors
    (307 MB, 80 px) raised the process's memory by 980 MB that way and by 390 MB filled in place
    (AMD EPYC). The rows live on the CPU whatever the batches' device, as the callers want them.
    """

    def __init__(self, total: int) -> None:
        self.total, self.filled = total, 0
        self.rows: Optional[torch.Tensor] = None

    def add(self, batch: torch.Tensor) -> None:
        if self.rows is None:
            self.rows = torch.empty((self.total, *batch.shape[1:]), dtype=batch.dtype)
        self.rows[self.filled : self.filled + len(batch)] = batch
        self.filled += len(batch)

    def result(self) -> torch.Tensor:
        return self.rows[: self.filled] if self.rows is not None else torch.empty(0)


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
        if (
            isinstance(conv, nn.Conv2d)
            and isinstance(bn, nn.BatchNorm2d)
            and bn.running_mean is not None
            and conv.out_channels == bn.num_features
        ):
            weight, bias = fuse_conv_bn_weights(
                conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
            )
            conv.weight, conv.bias = weight, bias
            # timm's BatchNormAct2d also holds the activation (and dropout) that follow the norm.
            rest = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if isinstance(m, nn.Module)]
            setattr(module, bn_name, nn.Sequential(*rest) if rest else nn.Identity())
            count += 1
    for _, child in children:
        count += fold_batchnorm(child)
    return count


class StaticSamePadding(nn.Module):
    """A TensorFlow-"same" convolution (timm's ``Conv2dSame``) for one input size, without its pad.

    ``Conv2dSame`` pads every input, a copy of the whole activation, because with a stride "same"
    padding can be one pixel more at the bottom/right than at the top/left. For a known input size
    the same outputs come from the kernel grown by that pixel (a zero row and column before it) and
    ordinary symmetric padding: no copy. EfficientNet-Lite0 at 96 px on the AMD EPYC: 1,350 →
    1,563 images/s at batch 32, outputs bit-identical there (the larger kernel may sum in another
    order elsewhere; :func:`folded_copy` checks). Any other input size takes the original path.
    """

    def __init__(self, conv: nn.Conv2d, size: tuple[int, int]):
        super().__init__()
        self.original = conv
        self.size = tuple(size)
        padding, grown = [], []
        for length, k, s in zip(self.size, conv.kernel_size, conv.stride):
            total = max((math.ceil(length / s) - 1) * s + k - length, 0)
            padding.append(total - total // 2)  # the larger, bottom/right side
            grown.append(total % 2)  # bottom/right minus top/left: 0 or 1
        self.padding = tuple(padding)
        weight = F.pad(conv.weight.detach(), (grown[1], 0, grown[0], 0))
        layout = torch.channels_last if conv.weight.is_contiguous(memory_format=torch.channels_last) else None
        self.register_buffer("weight", weight.contiguous(memory_format=layout or torch.contiguous_format))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.size:
            return self.original(x)
        conv = self.original
        return F.conv2d(x, self.weight, conv.bias, conv.stride, self.padding, 1, conv.groups)


def static_same_padding(model: nn.Module, probe: torch.Tensor) -> int:
    """Swap each timm ``Conv2dSame`` in ``model`` for a :class:`StaticSamePadding` at the size
    ``probe`` gives it; returns the count. For inference copies only (see :func:`folded_copy`)."""
    from timm.layers import Conv2dSame

    sizes = {}

    def record(name: str):
        def hook(_, args) -> None:  # a pre-hook that returned something would replace the inputs
            sizes.setdefault(name, tuple(args[0].shape[-2:]))

        return hook

    convs = [(name, m) for name, m in model.named_modules() if type(m) is Conv2dSame and m.dilation == (1, 1)]
    hooks = [m.register_forward_pre_hook(record(name)) for name, m in convs]
    try:
        model(probe)
    finally:
        for hook in hooks:
            hook.remove()
    for name, conv in convs:
        if name in sizes:
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent), attr, StaticSamePadding(conv, sizes[name]))
    return len(sizes)


@torch.inference_mode()
def folded_copy(model: nn.Module, probe: torch.Tensor) -> nn.Module:
    """An eval-mode copy of ``model`` made faster for inference at ``probe``'s size, if it gives the
    same outputs; else ``model``.

    BatchNorm is folded into the convolutions (about 1.3-1.6x faster CNN inference on the CPU) and
    timm's padded "same" convolutions get static padding (:class:`StaticSamePadding`). The copy
    must match the original on ``probe`` (a few real inputs) to float rounding, 1e-4 of the
    outputs' scale.
    """
    if not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        return model
    fast = copy.deepcopy(model).eval()
    if fold_batchnorm(fast) == 0:
        return model
    static_same_padding(fast, probe)
    with eval_mode(model):  # modules shared with a trainable top keep their mode
        reference, candidate = model(probe).float(), fast(probe).float()
    scale = reference.abs().max().item() or 1.0
    return fast if (reference - candidate).abs().max().item() <= 1e-4 * scale else model


def evaluate_split(
    model: nn.Module,
    preprocessor: BatchPreprocessor,
    split,
    device="cpu",
    batch_size: Optional[int] = None,
    autocast_dtype: Optional[torch.dtype] = None,
    tta: int = 1,
) -> dict:
    """Metrics of ``model`` on a whole split (``tta``: test-time views, see :func:`batched_inference`)."""
    logits = batched_inference(model, preprocessor, split, batch_size, device, autocast_dtype, tta)
    return classification_metrics(split.labels, logits, split.classes)


# --- a finished run ----------------------------------------------------------------------------


@torch.inference_mode()
def predict_images(run: LoadedRun, images: list[torch.Tensor], batch_size: int = 64, tta: int = 1) -> torch.Tensor:
    """Class probabilities ``[N, classes]`` for uint8 images of any sizes (``tta``: shifted views averaged)."""
    shifts = tta_shifts(tta)
    preprocess = run.preprocessor()
    images = [eval_view(img, run.preprocessing) for img in images]  # the test set's resize + centre crop
    run.model.eval()
    probabilities = []
    for start in range(0, len(images), batch_size):
        # Each image is resized on its own (sizes differ), then the batch runs at once.
        chunk = images[start : start + batch_size]
        views = [torch.cat([preprocess(img.unsqueeze(0), shift=s) for img in chunk]) for s in shifts]
        probabilities.append(mean_probabilities([run.model(v) for v in views]))
    return torch.cat(probabilities) if probabilities else torch.empty(0, len(run.classes))


def top_k(probabilities: torch.Tensor, classes: list[str], k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` most likely ``(class, probability)`` pairs per row."""
    k = max(1, min(k, len(classes)))
    values, indices = probabilities.topk(k, dim=1)
    return [[(classes[i], float(v)) for v, i in zip(vs, ix)] for vs, ix in zip(values.tolist(), indices.tolist())]


def evaluate_run(run: LoadedRun, data_dir: Optional[str] = None, test_size: Optional[int] = None, tta: int = 1) -> dict:
    """Re-evaluate a run on its dataset's test split (full, or a seeded stratified subset;
    ``tta``: that many shifted views averaged per image)."""
    from .config import make_config, read_yaml
    from .data.dataset import build_splits

    config_path = run.run_dir / "config.yaml"
    saved = read_yaml(config_path) if config_path.is_file() else {}
    overrides = {"val_source": "none", "test_size": test_size if test_size is not None else saved.get("test_size")}
    if data_dir:
        overrides["data_dir"] = data_dir
    config = make_config({**saved, **overrides}, str(config_path))
    test = build_splits(config, run.preprocessing).test
    return evaluate_split(run.model, run.preprocessor(), test, tta=tta)


def write_predictions_csv(path: Path, images: list, ranked: list[list[tuple[str, float]]]) -> None:
    """``path,label,probability`` per image (plus ``top_k`` as ``label:prob;…`` when k > 1)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    k = len(ranked[0]) if ranked else 1
    writer.writerow(["path", "label", "probability"] + (["top_k"] if k > 1 else []))
    for image, row in zip(images, ranked):
        extra = [";".join(f"{c}:{p:.6f}" for c, p in row)] if k > 1 else []
        writer.writerow([str(image), row[0][0], f"{row[0][1]:.6f}", *extra])
    try:
        atomic_write_text(Path(path), buffer.getvalue())
    except OSError as err:
        raise RunError(f"cannot write {path}: {err.strerror}") from None
