"""Where and how torch runs: the device, autocast's dtype, eval mode that restores, seeding."""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from typing import Optional

import torch
from torch import nn

from ..errors import ConfigError

# Lightning's precision names that run under torch.autocast, and the dtype they use.
AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def autocast_dtype(precision: str) -> Optional[torch.dtype]:
    """The autocast dtype of a Lightning precision setting, or None for full precision."""
    return AUTOCAST_DTYPES.get(precision)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators, and tell Lightning (if it trains) the seed.

    What Lightning's ``seed_everything(seed, workers=True)`` does, without importing Lightning:
    a run that trains only a head on cached features never needs it, and its import (with
    torchmetrics) is a noticeable share of such a short run (figures in docs/performance.md).
    ``PL_GLOBAL_SEED`` and ``PL_SEED_WORKERS`` are the variables Lightning reads to seed DDP
    samplers and loader workers.
    """
    import numpy as np

    os.environ["PL_GLOBAL_SEED"] = str(seed)
    os.environ["PL_SEED_WORKERS"] = "1"
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(device: str) -> str:
    """Map ``auto`` to the best available accelerator: CUDA, then MPS, then CPU."""
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available; use --device auto or cpu")
    if device == "mps" and not _mps_available():
        raise ConfigError("--device mps was asked for but MPS is not available; use --device auto or cpu")
    return device


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


@contextmanager
def eval_mode(module: nn.Module):
    """Run a block with ``module`` in eval mode, then give it back the mode it had.

    Inference often runs on modules shared with a trainable part (the head above a cache
    boundary, a backbone being probed); their train/eval mode must survive it.
    """
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
