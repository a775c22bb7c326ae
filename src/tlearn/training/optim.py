"""Optimisers and per-step learning-rate schedules."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..errors import ConfigError


@dataclass(frozen=True)
class OptimSettings:
    """The options that shape the optimiser and its schedule."""

    optimizer: str
    lr: float
    weight_decay: float
    momentum: float
    scheduler: str

    @classmethod
    def of(cls, config) -> OptimSettings:
        return cls(config.optimizer, config.lr, config.weight_decay, config.momentum, config.scheduler)


def make_optimizer(model: nn.Module, config: OptimSettings, total_steps: int, groups: Optional[list] = None) -> dict:
    """Optimiser plus a per-step LR schedule.

    ``groups`` (``[(params, lr multiplier)]``) gives discriminative LRs and may hold parameters
    that are still frozen (gradual unfreezing): they join the updates once they get gradients.
    """
    if groups is None:
        groups = [([p for p in model.parameters() if p.requires_grad], 1.0)]
    param_groups = []
    for params, mult in groups:
        # No weight decay on biases and normalisation scales (1-D tensors): decaying them only hurts.
        for chunk, decay in (
            ([p for p in params if p.ndim > 1], config.weight_decay),
            ([p for p in params if p.ndim <= 1], 0.0),
        ):
            if chunk:
                param_groups.append({"params": chunk, "weight_decay": decay, "lr": config.lr * mult})
    if not param_groups:
        raise ConfigError("nothing to train: every parameter is frozen")
    kernel = fused_kernel(param_groups)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(param_groups, lr=config.lr, momentum=config.momentum, **kernel)
    elif config.optimizer == "adam":
        optimizer = torch.optim.Adam(param_groups, lr=config.lr, **kernel)
    else:
        optimizer = torch.optim.AdamW(param_groups, lr=config.lr, **kernel)
    total_steps = max(1, int(total_steps))
    if config.scheduler == "none":
        return {"optimizer": optimizer}
    if config.scheduler == "onecycle":
        max_lr = [g["lr"] for g in param_groups]
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, CosineWithWarmup(total_steps))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def fused_kernel(param_groups: list[dict]) -> dict:
    """``fused=True`` where torch has a fused update for the parameters' device (CPU and CUDA floats).

    On the CPU torch otherwise updates tensor by tensor, one small kernel per parameter: for a
    model of many small tensors such as EfficientNet-Lite0 the fused update is several times
    quicker and saves a visible share of a short run (figures in docs/performance.md).
    """
    params = [p for group in param_groups for p in group["params"]]
    usable = all(p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float64) for p in params)
    return {"fused": True} if usable else {}


class CosineWithWarmup:
    """:func:`cosine_with_warmup` over ``total_steps``, an attribute a time budget may re-fit mid-run
    (an object, not a lambda, so that the scheduler's state holds it and a resume restores it)."""

    def __init__(self, total_steps: int) -> None:
        self.total_steps = total_steps

    def __call__(self, step: int) -> float:
        return cosine_with_warmup(step, self.total_steps)


def cosine_with_warmup(step: int, total: int, warmup_fraction: float = 0.05) -> float:
    """LR multiplier: linear warm-up over the first 5 % of steps, then cosine decay to zero."""
    warmup = max(1, int(total * warmup_fraction))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def reschedule(schedulers: list, total_steps: int) -> bool:
    """Set the length of every per-step schedule in ``schedulers`` to ``total_steps``; False (and
    nothing changed) when one of them cannot follow (only :class:`CosineWithWarmup` can); True
    without schedules (a constant LR follows any length)."""
    if not schedulers:
        return True
    lambdas = [schedule for scheduler in schedulers for schedule in getattr(scheduler, "lr_lambdas", [None])]
    if not lambdas or not all(isinstance(schedule, CosineWithWarmup) for schedule in lambdas):
        return False
    for schedule in lambdas:
        schedule.total_steps = max(1, int(total_steps))
    return True
