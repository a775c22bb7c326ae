"""Benchmark 1: the frozen-feature cache against recomputing the backbone every epoch.

The same frozen-backbone run (20 epochs, 1,000 train / 1,000 test, 96 px) with
``--feature-cache off`` and ``auto`` (empty cache dir), each in a child process.
Target: wall-time ratio >= 10x at equal accuracy (+-0.3 pt).
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, run_cli, write_result  # noqa: E402


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tlearn-bench-cache-"))
    common = ["--data-dir", data_dir(), "--freeze", "backbone", "--epochs", "20", "--train-size", "1000",
              "--test-size", "1000", "--image-size", "96", "--augment", "none", "--seed", "0",
              "--cache-dir", str(tmp / "cache")]
    off = run_cli([*common, "--feature-cache", "off", "--out", str(tmp / "off")])
    on = run_cli([*common, "--feature-cache", "auto", "--out", str(tmp / "auto")])
    reuse = run_cli([*common, "--feature-cache", "auto", "--out", str(tmp / "reuse")])
    rows = {}
    for name, r in (("off", off), ("auto", on), ("auto-reused", reuse)):
        m = r["metrics"]
        rows[name] = {"wall_seconds": r["wall_seconds"], "test_accuracy": m["test_accuracy"], "test_samples": m["test_samples"],
                      "train_seconds": m["train_seconds"], "feature_cache": m["feature_cache"]}
    # Partial freezing: stem … blocks.4 frozen, blocks.5-6 + head trained on cached activations.
    partial = [*common[:2], "--freeze", "until:blocks.4", *common[4:]]
    for name, mode in (("partial-off", "off"), ("partial-auto", "auto")):
        r = run_cli([*partial, "--feature-cache", mode, "--out", str(tmp / name)])
        m = r["metrics"]
        rows[name] = {"wall_seconds": r["wall_seconds"], "test_accuracy": m["test_accuracy"], "test_samples": m["test_samples"],
                      "train_seconds": m["train_seconds"], "feature_cache": m["feature_cache"]}
    ratio = rows["off"]["wall_seconds"] / rows["auto"]["wall_seconds"]
    diff = 100 * abs(rows["off"]["test_accuracy"] - rows["auto"]["test_accuracy"])
    print(f"{'run':<14}{'wall s':>9}{'test acc':>10}")
    for name, r in rows.items():
        print(f"{name:<14}{r['wall_seconds']:>9.1f}{100 * r['test_accuracy']:>9.2f}%")
    print(f"speed-up (off / auto, fresh cache): {ratio:.1f}x; accuracy difference {diff:.2f} pt")
    print(f"partial freezing (until:blocks.4): {rows['partial-off']['wall_seconds'] / rows['partial-auto']['wall_seconds']:.1f}x")
    write_result("cache", {"runs": rows, "speedup_fresh": round(ratio, 2),
                           "speedup_reused": round(rows["off"]["wall_seconds"] / rows["auto-reused"]["wall_seconds"], 2),
                           "accuracy_difference_pt": round(diff, 3), "target": ">= 10x at +-0.3 pt",
                           "partial_speedup": round(rows["partial-off"]["wall_seconds"] / rows["partial-auto"]["wall_seconds"], 2)})


if __name__ == "__main__":
    main()
