"""Torch helpers every layer shares, one job per module.

``device`` (which device runs, autocast's dtype, eval mode that restores, seeding), ``hardware``
(the CPU's model, the machine a run was timed on, free memory), ``batch_size`` (CPU inference batch
sizes and :class:`BatchSizeTuner`), ``clock`` (the time budget's clock).
"""

from .batch_size import BatchSizeTuner, inference_batch_size
from .clock import counting_from_process_start, seconds_since_process_start, seconds_spent
from .device import AUTOCAST_DTYPES, autocast_dtype, eval_mode, resolve_device, seed_everything
from .hardware import available_memory, cpu_model, machine

__all__ = [
    "AUTOCAST_DTYPES",
    "BatchSizeTuner",
    "autocast_dtype",
    "available_memory",
    "counting_from_process_start",
    "cpu_model",
    "eval_mode",
    "inference_batch_size",
    "machine",
    "resolve_device",
    "seconds_since_process_start",
    "seconds_spent",
    "seed_everything",
]
