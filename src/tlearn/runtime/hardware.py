"""What a run's timings were measured on: the CPU's model, torch's threads, the accelerator, free memory.

(Named ``hardware`` rather than ``machine`` so that the module does not shadow its own
:func:`machine` function in the package namespace.)
"""

from __future__ import annotations

from typing import Optional

import torch


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
