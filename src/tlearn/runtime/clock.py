"""The time budget's clock: seconds spent since a start, or since the process started."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Optional

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
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
            return float(uptime.read().split()[0]) - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
