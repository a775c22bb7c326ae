"""The machine a run is timed on: the CPU's model (from /proc/cpuinfo or lscpu), threads, accelerator."""

import torch

from tlearn.runtime.hardware import cpu_model, machine


def test_the_machine_names_the_cpu_model_lscpu_shows():
    import shutil
    import subprocess

    info = machine("cpu")
    assert info["cpu"] == cpu_model() and info["cpu"] and info["accelerator"] is None
    assert info["cpu_threads"] == torch.get_num_threads()
    if shutil.which("lscpu"):
        names = [
            line.split(":", 1)[1].strip()
            for line in subprocess.run(
                [shutil.which("lscpu")], capture_output=True, text=True, env={"LC_ALL": "C"}
            ).stdout.splitlines()
            if line.startswith("Model name")
        ]
        if names:  # x86 from /proc/cpuinfo, ARM from lscpu itself
            assert cpu_model() == names[0]


def test_without_a_model_name_in_proc_cpuinfo_lscpu_names_the_cpu(monkeypatch):
    import builtins

    from tlearn.runtime import hardware

    real_open = builtins.open
    monkeypatch.setattr(
        builtins,
        "open",
        lambda path, *a, **k: real_open("/dev/null") if path == "/proc/cpuinfo" else real_open(path, *a, **k),
    )
    monkeypatch.setattr(hardware, "_lscpu_model", lambda: "Neoverse-N1")
    assert cpu_model() == "Neoverse-N1"
