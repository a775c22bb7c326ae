"""Torch helpers every layer shares: which device runs, seeding, train/eval mode, inference batch size."""

from __future__ import annotations

import os
import random
import statistics
import time
from contextlib import contextmanager
from typing import Optional

import torch
from torch import nn

from .errors import ConfigError

# Lightning's precision names that run under torch.autocast, and the dtype they use.
AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def autocast_dtype(precision: str) -> Optional[torch.dtype]:
    """The autocast dtype of a Lightning precision setting, or None for full precision."""
    return AUTOCAST_DTYPES.get(precision)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators, and tell Lightning (if it trains) the seed.

    What Lightning's ``seed_everything(seed, workers=True)`` does, without importing Lightning:
    a run that trains only a head on cached features never needs it, and its import (with
    torchmetrics) is 0.6 s of a 6 s run. ``PL_GLOBAL_SEED`` and ``PL_SEED_WORKERS`` are the
    variables Lightning reads to seed DDP samplers and loader workers.
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


def cpu_model() -> str:
    """The CPU's model name, as ``lscpu`` shows it ("AMD EPYC", "Intel(R) Xeon(R) ..."), else
    what :mod:`platform` knows. Timings are only comparable on the same model: Intel and AMD
    machines of the same size differ in speed and in floating-point summation order."""
    import platform

    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return _lscpu_model() or platform.processor() or platform.machine() or "unknown"


def _lscpu_model() -> Optional[str]:
    """``lscpu``'s "Model name" where ``/proc/cpuinfo`` has none (ARM names its cores only there)."""
    import shutil
    import subprocess

    lscpu = shutil.which("lscpu")
    if not lscpu:
        return None
    try:
        out = subprocess.run([lscpu], capture_output=True, text=True, timeout=5, env={"LC_ALL": "C"}).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")]
    return names[0] if names else None


def machine(device: str) -> dict:
    """What a run's timings were measured on: the CPU model, torch's threads, the accelerator."""
    accelerator = None
    if torch.device(device).type == "cuda":
        accelerator = torch.cuda.get_device_name(torch.device(device))
    elif torch.device(device).type == "mps":
        accelerator = "Apple MPS"
    return {"cpu": cpu_model(), "cpu_threads": torch.get_num_threads(), "accelerator": accelerator}


def available_memory() -> Optional[int]:
    """Bytes the system can hand out without swapping (Linux ``MemAvailable``); None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


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


def inference_batch_size(device: str | torch.device) -> int:
    """Batch size for inference when it is not tuned (see :class:`BatchSizeTuner`): on CPU small
    batches stay in cache; GPUs want more."""
    return 64 if torch.device(device).type == "cpu" else 512


class BatchSizeTuner:
    """Finds the fastest CPU inference batch size on the data itself, while that data is evaluated.

    The best size depends on the input size and on the CPU's caches: on the 2-core AMD EPYC
    reference machine EfficientNet-Lite0 ran fastest at 16 images per batch at 80 px (732 images/s
    against 484 at 64) but at 64 per batch at 56 px. So the first batches of a large evaluation try
    each candidate twice (the first pass of a new shape pays one-off set-up and is not counted), and
    the rest use the fastest. Batches are whole multiples of ``BASE`` source batches.

    Sizes are tried smallest first, and once a size runs slower than a smaller one the larger ones
    are not tried: past the CPU's caches they only get slower (at 96 px: 1,311 images/s at 32,
    815 at 64, 568 at 128), and trying 64 and 128 twice each cost 0.3 s more than running those
    384 images at 32 (from those rates), a sixth of a cached run's 1.8 s of extraction.

    One timed batch per size is at the mercy of a shared CPU's hiccups: a 72 px evaluation chose 64
    in seven of eight runs (8.6-9.4 s) and, once 64's one batch ran slow, 32 (11.6 s). So every
    batch at the chosen size is timed too, and every ``RECHECK`` of them the sizes next to it run
    one batch each again; the choice is the size with the highest median rate, so one slow batch
    neither makes nor keeps a choice.
    """

    BASE = 16
    MULTIPLES = (1, 2, 4, 8)
    MIN_SAMPLES = 2048  # below this the trials would be most of the work
    RECHECK = 16

    def __init__(self) -> None:
        self._trials = [m for m in self.MULTIPLES for _ in range(2)]
        self._growing = True  # the first search, smallest size first
        self._rates: dict[int, list[float]] = {}  # images/s of each timed batch, per size
        self._since_check = 0
        self.multiple = self._trials[0]

    def regroup(self, base_batches):
        """Concatenate base batches into batches of the current choice."""
        pending = []
        for batch in base_batches:
            pending.append(batch)
            if len(pending) == self.multiple:
                yield torch.cat(pending)
                pending = []
        if pending:
            yield torch.cat(pending)

    def rate(self, multiple: int) -> float:
        """The median images/s measured at ``multiple`` base batches (0 if never timed)."""
        rates = self._rates.get(multiple)
        return statistics.median_high(rates) if rates else 0.0

    def record(self, samples: int, seconds: float) -> None:
        """Report how long the last batch took; moves to the next trial or to the best size."""
        rate = samples / max(seconds, 1e-9)
        if self._trials:
            done = self._trials.pop(0)
            if samples == done * self.BASE and not (self._trials and self._trials[0] == done):
                slower = self._growing and rate < max(map(self.rate, self._rates), default=0.0)
                self._rates.setdefault(done, []).append(rate)  # (the second pass of a new size)
                if slower:  # slower than a smaller size: stop growing
                    self._trials.clear()
            if not self._trials:
                self._growing = False
        elif samples == self.multiple * self.BASE:
            self._rates[self.multiple].append(rate)
            self._since_check += 1
            if self._since_check >= self.RECHECK:
                self._since_check = 0
                self._trials = self._neighbours()
        self.multiple = self._trials[0] if self._trials else max(self._rates, key=self.rate, default=4)

    def _neighbours(self) -> list[int]:
        """One batch at each size next to the choice (two at one never run: its first pays set-up)."""
        i = self.MULTIPLES.index(self.multiple)
        sizes = [self.MULTIPLES[j] for j in (i - 1, i + 1) if 0 <= j < len(self.MULTIPLES)]
        return [m for size in sizes for m in ([size] if size in self._rates else [size, size])]


_COUNT_FROM_PROCESS_START = False


@contextmanager
def counting_from_process_start():
    """Inside it, :func:`seconds_spent` counts from the start of the process: ``tlearn train`` promises
    its ``--time-budget`` from the command line to the finished run, Python's own start-up included."""
    global _COUNT_FROM_PROCESS_START
    _COUNT_FROM_PROCESS_START = True
    try:
        yield
    finally:
        _COUNT_FROM_PROCESS_START = False


def seconds_spent(started: float) -> float:
    """Seconds since ``started`` (a ``time.perf_counter()`` value), or since the process started
    inside :func:`counting_from_process_start` (where the system says when that was)."""
    since_start = seconds_since_process_start() if _COUNT_FROM_PROCESS_START else None
    return since_start if since_start is not None else time.perf_counter() - started


def seconds_since_process_start() -> Optional[float]:
    """How long this process has been running (Linux ``/proc``); None where that is unknown."""
    import os

    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
            return float(uptime.read().split()[0]) - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
