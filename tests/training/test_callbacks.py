"""The epoch history (exact-resume state, one logged row per epoch) and gradual unfreezing."""

from types import SimpleNamespace

import torch

from tests.helpers import preprocessing
from tlearn.config import FreezeSpec
from tlearn.models.backbones import create_backbone
from tlearn.models.transfer import build_model
from tlearn.training.callbacks import EpochHistory, GradualUnfreeze


class _Logger:
    def __init__(self):
        self.rows, self.saves = [], 0

    def log_metrics(self, row, step):
        self.rows.append((step, dict(row)))

    def save(self):
        self.saves += 1


def test_history_state_restores_rows_and_generators_and_relogs_them():
    generator = torch.Generator().manual_seed(3)
    history = EpochHistory({"shuffle": generator})
    history.rows = [{"epoch": 1, "train_loss": 0.5}]
    state = history.state_dict()
    expected = torch.rand(3, generator=generator)
    restored = EpochHistory({"shuffle": torch.Generator().manual_seed(99)})
    restored.load_state_dict(state)
    assert torch.equal(torch.rand(3, generator=restored.generators["shuffle"]), expected)
    logger = _Logger()
    restored.on_train_start(SimpleNamespace(is_global_zero=True, loggers=[logger]), None)
    assert logger.rows == [(1, {"epoch": 1, "train_loss": 0.5})] and logger.saves == 1


def test_gradual_unfreeze_applies_the_target_at_the_milestone():
    model = build_model(create_backbone("resnet18", "none"), preprocessing(32), 10)
    model.freeze(FreezeSpec("backbone"))
    callback = GradualUnfreeze(model, FreezeSpec.parse("until:layer2"), unfreeze_at=2)
    callback.on_train_epoch_start(SimpleNamespace(current_epoch=1), None)
    assert model.fully_frozen
    callback.on_train_epoch_start(SimpleNamespace(current_epoch=2), None)
    assert model.frozen_stages[-1] == "layer2" and model.backbone.model.layer3[0].conv1.weight.requires_grad


def test_resize_schedule_grows_over_the_first_half_then_holds_the_final_size():
    from tlearn.training.callbacks import resize_schedule

    assert resize_schedule(48, 64, 8) == [48, 52, 56, 60, 64, 64, 64, 64]
    assert resize_schedule(32, 64, 2) == [32, 64]
    assert resize_schedule(40, 64, 1) == [64]  # one epoch: evaluation's size


def test_progressive_resize_shrinks_training_batches_only():
    from tlearn.data.augment import BatchPreprocessor
    from tlearn.training.callbacks import ProgressiveResize

    pre = BatchPreprocessor(preprocessing(image_size=64, in_chans=1), "digits")
    callback = ProgressiveResize(pre, 48)
    images = torch.randint(0, 255, (4, 1, 28, 28), dtype=torch.uint8)
    sides = []
    for epoch in range(4):
        callback.on_train_epoch_start(SimpleNamespace(max_epochs=4, current_epoch=epoch), None)
        sides.append(pre(images, train=True).shape[-1])
        assert pre(images, train=False).shape[-1] == 64
    assert sides == [48, 56, 64, 64]
    callback.on_train_end(None, None)
    assert pre(images, train=True).shape[-1] == 64
