"""Benchmark: ``--time-budget``. Each run is ``tlearn train --time-budget B --seed S`` in a child
process; reported: wall time from process start to the finished run directory (the budget's promise),
the epochs and image size the run chose, and test accuracy on all 10,000 MNIST test images.

Defaults: the default recipe with 60 s and ``mnist1000-fast`` with 40 s, seeds 0, 1, 2.
``--kernels avx2`` runs the children on ATen's and oneDNN's AVX2 kernels (see ``bench_recipes.py``).
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import KERNELS, run_cli, write_result  # noqa: E402

CASES = {"default-60": ([], 60), "fast-40": (["--preset", "mnist1000-fast"], 40)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--kernels", choices=sorted(KERNELS), default="native", help="CPU kernels the runs use.")
    parser.add_argument("--name", default="budget", help="Result file name (benchmarks/results/<name>.json).")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tlearn-bench-budget-"))
    rows = []
    for case in args.cases.split(","):
        flags, budget = CASES[case]
        for seed in map(int, args.seeds.split(",")):
            out = tmp / f"{case}-{seed}"
            cli_args = [*flags, "--time-budget", str(budget), "--seed", str(seed), "--out", str(out)]
            run = run_cli(cli_args, env=KERNELS[args.kernels])
            m = run["metrics"]
            fit = m["time_budget"]
            row = {
                "case": case,
                "budget_seconds": budget,
                "seed": seed,
                "wall_seconds": run["wall_seconds"],
                "test_accuracy": m["test_accuracy"],
                "test_samples": m["test_samples"],
                "keep": m["keep"],
                "model_epoch": m["model_epoch"],
                "fit": fit,
                "train_seconds": m["train_seconds"],
                "eval_seconds": m["eval_seconds"],
            }
            rows.append(row)
            print(
                f"{case:<11} seed {seed}: {m['test_accuracy']:.2%} on {m['test_samples']:,} "
                f"in {run['wall_seconds']:.1f} s (budget {budget} s; {fit['epochs']} epochs at {fit['image_size']} px)",
                flush=True,
            )
    write_result(args.name, {"kernels": args.kernels, "kernel_env": KERNELS[args.kernels], "runs": rows})


if __name__ == "__main__":
    main()
