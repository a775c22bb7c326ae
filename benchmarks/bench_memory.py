"""Benchmark 4: peak memory (RSS) of the default run and of a full-60k-MNIST run.

Each case runs ``tlearn train`` in its own child process and reads that child's peak RSS from
``getrusage(RUSAGE_CHILDREN)`` of a fresh intermediate process, so cases do not mix.
Targets: default run <= 2 GB; a run on all 60,000 training images <= 4 GB (the upsampled
dataset is never materialised: images stay uint8 28x28 and are resized per batch).
"""

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, data_dir, run_cli, write_result  # noqa: E402

CASES = {
    "default": ["--preset", "default"],
    # One fine-tuning epoch over all 60k images (fast recipe, 64 px): memory does not grow with epochs.
    "full-60k": ["--preset", "mnist1000-fast", "--train-size", "60000", "--epochs", "1", "--val-source", "none"],
    "full-60k-frozen-cached": [
        "--preset",
        "default",
        "--train-size",
        "60000",
        "--epochs",
        "3",
        "--val-source",
        "none",
        "--freeze",
        "backbone",
        "--augment",
        "none",
    ],
}


def measure(case: str) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"tlearn-mem-{case}-"))
    run = run_cli(
        [*CASES[case], "--data-dir", data_dir(), "--cache-dir", str(out / "cache"), "--out", str(out / "run")]
    )
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    m = run["metrics"]
    return {
        "peak_rss_mb": round(peak_mb, 1),
        "wall_seconds": run["wall_seconds"],
        "train_samples": m["train_samples"],
        "test_accuracy": m["test_accuracy"],
        "test_samples": m["test_samples"],
        "epochs": m["epochs"],
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        print(json.dumps(measure(sys.argv[2])))
        return
    # --only a,b: re-measure some cases and keep the others' last results.
    only = sys.argv[2].split(",") if len(sys.argv) == 3 and sys.argv[1] == "--only" else list(CASES)
    previous = RESULTS / "memory.json"
    results = json.loads(previous.read_text())["cases"] if previous.is_file() and only != list(CASES) else {}
    for case in only:
        proc = subprocess.run([sys.executable, __file__, "--case", case], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-2000:])
        results[case] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{case:<24} peak RSS {results[case]['peak_rss_mb']:>8.0f} MB  "
            f"wall {results[case]['wall_seconds']:>7.1f} s  "
            f"test acc {100 * results[case]['test_accuracy']:.2f}% on {results[case]['test_samples']}"
        )
    write_result("memory", {"cases": results, "targets_mb": {"default": 2048, "full-60k": 4096}})


if __name__ == "__main__":
    main()
