"""Helpers shared by the benchmark scripts: timed CLI runs, JSON results, table printing."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

# Environment for child processes that run on other CPU kernels: ATen reads ATEN_CPU_CAPABILITY once
# at start-up; oneDNN (the convolutions) reads ONEDNN_MAX_CPU_ISA when it first picks a kernel. The
# AVX2 kernels sum in another order than the AVX-512 ones, as a CPU without AVX-512 does.
KERNELS = {"native": {}, "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}


def run_cli(args: list[str], env: dict | None = None) -> dict:
    """Run ``tlearn train ARGS`` in a child process; wall time, peak RSS and its metrics.json."""
    out = Path(args[args.index("--out") + 1])
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "tlearn.cli", "train", "--no-progress", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"tlearn failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "wall_seconds": round(wall, 2),
        "peak_rss_mb_upper_bound": round(max(peak_kb, before) / 1024, 1),
        "metrics": metrics,
    }


def environment() -> dict:
    import torch

    from tlearn.runtime import cpu_model

    return {
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor(),
    }


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "environment": environment(), **payload}, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def data_dir() -> str:
    value = os.environ.get("TLEARN_DATA_DIR")
    if not value:
        raise SystemExit("set TLEARN_DATA_DIR to a folder holding MNIST/raw")
    return value
