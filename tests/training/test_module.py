"""The LightningModule's step: preprocessing on the device, label smoothing only in training."""

import torch
from torch import nn

from tests.helpers import preprocessing
from tlearn.data.augment import BatchPreprocessor
from tlearn.training.module import TransferLearner
from tlearn.training.objective import LossTerms
from tlearn.training.optim import OptimSettings


def test_step_preprocesses_uint8_batches_and_smooths_only_training_labels():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    learner = TransferLearner(
        model,
        BatchPreprocessor(preprocessing(4, 1)),
        OptimSettings("adamw", 1e-3, 0, 0.9, "none"),
        LossTerms(label_smoothing=0.3),
    )
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0, 1])
    train_loss, _, n = learner._step((images, labels), train=True)
    eval_loss, acc, _ = learner._step((images, labels), train=False)
    logits = model(BatchPreprocessor(preprocessing(4, 1))(images))
    assert n == 5 and 0.0 <= float(acc) <= 1.0
    torch.testing.assert_close(eval_loss, nn.functional.cross_entropy(logits, labels))
    torch.testing.assert_close(train_loss, nn.functional.cross_entropy(logits, labels, label_smoothing=0.3))
