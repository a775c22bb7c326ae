"""Batched inference: a model's outputs for a split's images or a tensor, with BatchNorm folding,
test-time views and a tuned CPU batch size."""

from __future__ import annotations

import itertools
import time
from contextlib import nullcontext
from typing import Optional

import torch
from torch import nn

from ..data.augment import BatchPreprocessor, tta_shifts
from ..models.folding import folded_copy
from ..runtime.batch_size import BatchSizeTuner, inference_batch_size
from ..runtime.device import eval_mode

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
    (see :func:`~tlearn.models.folding.folded_copy`); ``model`` itself is never changed. ``tta`` > 1
    averages the class probabilities of that many shifted views (:func:`~tlearn.data.augment.tta_shifts`)
    and returns their log, so softmax and argmax downstream see the averaged prediction.
    ``single_view`` also returns the unshifted view's outputs, from the same pass: ``(outputs, single)``.
    Without ``batch_size``, a large evaluation on the CPU tunes its batch size as it goes
    (:class:`~tlearn.runtime.batch_size.BatchSizeTuner`); ``tuner`` carries one search over several
    calls.
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
    and the freed batches stay in the allocator, so a large extraction's memory grows to several
    times the outputs' size; filled in place it stays close to it (figures in docs/performance.md).
    The rows live on the CPU whatever the batches' device, as the callers want them.
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
