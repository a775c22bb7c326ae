"""Run presets end to end and record their headline numbers as JSON.

    python benchmarks/run_presets.py --out benchmarks/results/presets-cpu.json \
        --run default default '{}' \
        --run seed000 seed000-vgg16 '{weights: none}'

Each run goes through ``tlearn.train`` exactly as ``tlearn train --preset P`` would, with the
YAML overrides applied; the JSON holds accuracy, set sizes, seed, times and the device.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", nargs=3, action="append", metavar=("NAME", "PRESET", "OVERRIDES"), required=True)
    parser.add_argument("--out", required=True, help="JSON file for the results")
    args = parser.parse_args()

    import torch

    from tlearn.config import resolve_config
    from tlearn.training.pipeline import train

    results = []
    for name, preset, overrides in args.run:
        started = time.perf_counter()
        config = resolve_config(preset, None, yaml.safe_load(overrides) or {})
        metrics = train(config).metrics
        row = {
            "name": name,
            "preset": preset,
            "overrides": overrides,
            "test_accuracy": metrics["test_accuracy"],
            "test_samples": metrics["test_samples"],
            "train_samples": metrics["train_samples"],
            "final_val_accuracy": metrics["final_val_accuracy"],
            "final_train_accuracy": metrics["final_train_accuracy"],
            "val_source": metrics["val_source"],
            "epochs": metrics["epochs"],
            "seed": metrics["seed"],
            "device": metrics["device"],
            "train_seconds": metrics["train_seconds"],
            "total_seconds": metrics["total_seconds"],
            "wall_seconds": round(time.perf_counter() - started, 2),
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "threads": torch.get_num_threads(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"environment": env, "runs": results}, indent=2) + "\n")
    print(f"{'run':<22}{'test acc':>10}{'test n':>8}{'train s':>10}{'total s':>10}  device")
    for r in results:
        print(
            f"{r['name']:<22}{100 * r['test_accuracy']:>9.2f}%{r['test_samples']:>8}"
            f"{r['train_seconds']:>10.1f}{r['total_seconds']:>10.1f}  {r['device']}"
        )


if __name__ == "__main__":
    main()
