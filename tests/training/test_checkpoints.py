"""Checkpoints leave out what cannot change and put it back, verified, on resume."""

import pytest
import torch
from torch import nn

from tlearn.errors import RunError
from tlearn.training.checkpoints import CONSTANT_KEY, ConstantStateSlimmer, constant_state


def _net():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Linear(2, 2))
    for p in [*net[0].parameters(), *net[1].parameters()]:
        p.requires_grad_(False)
    return net


def test_constant_state_is_frozen_parameters_and_frozen_norm_statistics():
    keys = set(constant_state(_net()))
    assert keys == {
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
    }


def test_slim_then_refill_round_trips_and_refuses_other_weights():
    net = _net()
    checkpoint = {"state_dict": {k: v.clone() for k, v in net.state_dict().items()}}
    slimmer = ConstantStateSlimmer()
    slimmer.slim(net, checkpoint)
    assert set(checkpoint["state_dict"]) == {"2.weight", "2.bias"} and len(checkpoint[CONSTANT_KEY]["keys"]) == 7
    slimmer.refill(net, checkpoint)
    assert set(checkpoint["state_dict"]) == set(net.state_dict())
    slimmer.slim(net, checkpoint)
    with torch.no_grad():
        net[0].weight.add_(1.0)  # the "pretrained" weights changed since the checkpoint
    with pytest.raises(RunError, match="frozen weights differ"):
        slimmer.refill(net, checkpoint)
