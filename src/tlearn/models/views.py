"""Views of a :class:`~.transfer.TransferModel` cut at a stage boundary: the frozen bottom
(:class:`FrozenPart`), the stages between two cuts (:class:`MiddlePart`), the trainable top above
stored activations (:class:`TopModel`), and the model whose frozen stem runs as a folded copy while
it trains (:class:`FoldedStemModel`)."""

from __future__ import annotations

import torch
from torch import nn

from ..data.preprocessing import Preprocessing
from .folding import folded_copy
from .transfer import TransferModel


def runs_stage_by_stage(model: TransferModel, prep: Preprocessing) -> bool:
    """Whether ``model``'s backbone can be cut at a stage boundary (checked once, at the run's input
    size and at least 32 px): what both the cache and the folded frozen stem need."""
    return model.backbone.splittable(prep.in_chans, max(32, prep.image_size))


class TopModel(nn.Module):
    """The trainable rest of a :class:`TransferModel` above a cache boundary."""

    def __init__(self, model: TransferModel, stage_index: int, pooled: bool, channels_last: bool = True):
        super().__init__()
        self.model = model
        self.stage_index = stage_index
        self.pooled = pooled
        self.channels_last = channels_last

    def forward(self, activation: torch.Tensor) -> torch.Tensor:
        if self.channels_last and activation.ndim == 4 and activation.shape[-1] > 1:
            # Collated activations arrive NCHW; the convolutions above the cut run far faster in
            # the channels_last layout their weights use (figures in docs/performance.md).
            activation = activation.contiguous(memory_format=torch.channels_last)
        if self.pooled:  # the stored vector is what the linear head takes
            return self.model.head(activation)
        if self.stage_index < 0:
            return self.model.classify(activation)
        return self.model.classify(self.model.backbone.forward_from(activation, self.stage_index))


class FoldedStemModel(nn.Module):
    """A :class:`TransferModel` whose stem up to a stage is frozen, as the image path trains it.

    The frozen stages never change during a run, so while training they run as a BatchNorm-folded,
    statically padded copy (:func:`~.folding.folded_copy`, made from the first training
    batch, one per device) without recording gradients; the stages above run as usual. Folding
    saves the BatchNorm work of every frozen step, and static padding its padding copies; and
    those stages keep no autograd graph (figures in docs/performance.md). Evaluation and anything
    without gradients run the model itself, unchanged.

    It registers the model's own ``backbone`` and ``head``, not the model: parameter names, state
    dicts and checkpoints are exactly the model's, so runs checkpointed before or without it resume.
    """

    def __init__(self, model: TransferModel, stage_index: int):
        super().__init__()
        self.backbone = model.backbone
        self.head = model.head
        self.stage_index = stage_index
        self._model = [model]  # in a list: the same modules must not be registered twice
        self._folded: dict[torch.device, nn.Module] = {}
        self.train(model.training)

    @property
    def model(self) -> TransferModel:
        return self._model[0]

    def train(self, mode: bool = True) -> FoldedStemModel:
        self.training = mode
        self.model.train(mode)  # keeps frozen BatchNorm in eval mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.is_grad_enabled()):
            return self.model(x)
        with torch.no_grad():
            activation = self._stem(x)(x)
        return self.model.classify(self.model.backbone.forward_from(activation, self.stage_index))

    def _stem(self, x: torch.Tensor) -> nn.Module:
        if x.device not in self._folded:
            # Folded and checked in full precision: under bf16 autocast the check would fail and
            # the unfolded stem be kept. The copy then runs under the step's autocast like the rest.
            with torch.autocast(x.device.type, enabled=False):
                self._folded[x.device] = folded_copy(FrozenPart(self.model, self.stage_index), x[:8].float())
        return self._folded[x.device]


class FrozenPart(nn.Module):
    """The frozen bottom of a :class:`TransferModel`: images → boundary activations."""

    def __init__(self, model: TransferModel, stage_index: int, pooled: bool = False):
        super().__init__()
        self.model = model
        self.stage_index = stage_index
        self.pooled = pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stage_index >= 0:
            return self.model.backbone.forward_until(x, self.stage_index)
        return self.model.backbone(x) if self.pooled else self.model.backbone.forward_features(x)


class MiddlePart(nn.Module):
    """The stages of a :class:`TransferModel` between two cuts: activations at stage ``start`` →
    those at stage ``end`` (``end`` -1: what the head takes, the pooled vector or the whole map)."""

    def __init__(self, model: TransferModel, start: int, end: int):
        super().__init__()
        self.model = model
        self.start = start
        self.end = end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)  # the layout the convolutions' weights use
        backbone = self.model.backbone
        if self.end >= 0:
            return backbone.forward_between(x, self.start, self.end)
        features = backbone.forward_from(x, self.start)
        return backbone.pool(features) if self.model.head_input == "pooled" else features
