"""Benchmark: recipes as a user runs them, ``tlearn train --preset P --seed S`` in a child process.

Reported per run: test accuracy on all 10,000 MNIST test images, wall time from process start to the
finished run directory, training and test-evaluation seconds, peak RSS, and the CPU model.
Default: ``mnist1000-fast`` for seeds 0, 1, 2 and ``default`` for seed 0.

``--kernels avx2`` runs the children on the AVX2 kernels of ATen and oneDNN instead of the best the CPU
has (AVX-512 on recent Intel and AMD server parts): other kernels sum in another order, which is
what moves a seed's result from one CPU to another, so a recipe that keeps its margin on both has
shown it does not hang on one machine's rounding.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import KERNELS, run_cli, write_result  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--run", nargs=2, action="append", metavar=("PRESET", "SEEDS"), help="e.g. mnist1000-fast 0,1,2"
    )
    parser.add_argument("--name", default="recipes-cpu", help="Result file name (benchmarks/results/<name>.json).")
    parser.add_argument("--kernels", choices=sorted(KERNELS), default="native", help="CPU kernels the runs use.")
    args = parser.parse_args()
    runs = args.run or [("mnist1000-fast", "0,1,2"), ("default", "0")]
    tmp = Path(tempfile.mkdtemp(prefix="tlearn-bench-recipes-"))
    rows = []
    for preset, seeds in runs:
        for seed in map(int, seeds.split(",")):
            out = tmp / f"{preset}-{seed}"
            run = run_cli(["--preset", preset, "--seed", str(seed), "--out", str(out)], env=KERNELS[args.kernels])
            m = run["metrics"]
            rows.append(
                {
                    "preset": preset,
                    "seed": seed,
                    "test_accuracy": m["test_accuracy"],
                    "tta_views": m.get("tta_views", 1),
                    "test_accuracy_single_view": m.get("test_accuracy_single_view", m["test_accuracy"]),
                    "test_samples": m["test_samples"],
                    "keep": m["keep"],
                    "model_epoch": m["model_epoch"],
                    "wall_seconds": run["wall_seconds"],
                    "train_seconds": m["train_seconds"],
                    "eval_seconds": m["eval_seconds"],
                    "peak_rss_mb_upper_bound": run["peak_rss_mb_upper_bound"],
                    "run_dir": str(out),
                }
            )
            print(
                f"{preset} seed {seed}: {m['test_accuracy']:.2%} on {m['test_samples']:,}, "
                f"{run['wall_seconds']:.1f} s wall "
                f"({m['train_seconds']:.1f} s training, {m['eval_seconds']:.1f} s test)",
                flush=True,
            )
    write_result(args.name, {"kernels": args.kernels, "kernel_env": KERNELS[args.kernels], "runs": rows})


if __name__ == "__main__":
    main()
