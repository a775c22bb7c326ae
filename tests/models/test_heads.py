"""The classifier heads."""

import pytest
import torch

from tlearn.errors import ConfigError
from tlearn.models.heads import LinearHead, MLPHead, build_head


def test_linear_head_pools_then_classifies():
    head = build_head("linear", (16, 3, 3), 5, dropout=0.0)
    assert isinstance(head, LinearHead)
    x = torch.randn(2, 16, 3, 3)
    torch.testing.assert_close(head(x), head.fc(x.mean((2, 3))))


def test_mlp_head_flattens_in_keras_order():
    head = build_head("mlp", (4, 2, 2), 3, hidden=8).eval()
    assert isinstance(head, MLPHead) and head.net[1].in_features == 16
    x = torch.randn(1, 4, 2, 2)
    flat = x.permute(0, 2, 3, 1).flatten(1)  # (H, W, C) order, as Keras flattens
    torch.testing.assert_close(head(x), head.net[4](torch.relu(head.net[1](flat))))


def test_unknown_head():
    with pytest.raises(ConfigError, match="unknown head"):
        build_head("attention", (4, 1, 1), 2)
