"""Optimisers and LR schedules."""

import pytest
import torch
from torch import nn

from tlearn.errors import ConfigError
from tlearn.training.optim import OptimSettings, cosine_with_warmup, make_optimizer

ADAMW = OptimSettings("adamw", 0.01, 0.05, 0.9, "cosine")


def test_no_weight_decay_on_biases_and_norms():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    groups = make_optimizer(model, ADAMW, 100)["optimizer"].param_groups
    decays = {tuple(p.shape): g["weight_decay"] for g in groups for p in g["params"]}
    assert decays[(4, 4)] == 0.05 and decays[(4,)] == 0.0


def test_discriminative_groups_scale_the_lr():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    groups = make_optimizer(nn.Sequential(a, b), ADAMW, 10, [(list(a.parameters()), 0.1), (list(b.parameters()), 1.0)])
    assert sorted({g["lr"] for g in groups["optimizer"].param_groups}) == [pytest.approx(0.001), 0.01]


def test_schedules_and_optimizers():
    model = nn.Linear(2, 2)
    assert isinstance(
        make_optimizer(model, OptimSettings("sgd", 0.1, 0, 0.8, "none"), 10)["optimizer"], torch.optim.SGD
    )
    onecycle = make_optimizer(model, OptimSettings("adam", 0.1, 0, 0.9, "onecycle"), 10)["lr_scheduler"]["scheduler"]
    assert isinstance(onecycle, torch.optim.lr_scheduler.OneCycleLR)
    assert cosine_with_warmup(0, 100) == pytest.approx(0.2) and cosine_with_warmup(5, 100) == pytest.approx(1.0)
    assert cosine_with_warmup(100, 100) == pytest.approx(0.0, abs=1e-9)


def test_nothing_to_train():
    model = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ConfigError, match="nothing to train"):
        make_optimizer(model, ADAMW, 10)


def test_cpu_float_parameters_get_the_fused_update_which_matches_the_loop():
    """The fused kernel is 4x faster on the CPU for Lite0; it must update exactly like the plain loop."""
    torch.manual_seed(0)
    fused_model, loop_model = nn.Linear(8, 3), nn.Linear(8, 3)
    loop_model.load_state_dict(fused_model.state_dict())
    fused = make_optimizer(fused_model, ADAMW, 10)["optimizer"]
    loop = torch.optim.AdamW(
        [{"params": [loop_model.weight], "weight_decay": 0.05}, {"params": [loop_model.bias], "weight_decay": 0.0}],
        lr=0.01,
    )
    assert fused.defaults["fused"] is True and not loop.defaults.get("fused")
    x = torch.randn(16, 8)
    for _ in range(5):
        for model, optimizer in ((fused_model, fused), (loop_model, loop)):
            optimizer.zero_grad()
            model(x).square().mean().backward()
            optimizer.step()
    torch.testing.assert_close(fused_model.weight, loop_model.weight, rtol=1e-5, atol=1e-6)


def test_half_precision_parameters_keep_the_plain_update():
    model = nn.Linear(2, 2).to(torch.float16)
    assert not make_optimizer(model, ADAMW, 10)["optimizer"].defaults.get("fused")
