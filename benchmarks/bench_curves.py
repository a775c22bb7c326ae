"""Benchmark 3: time-to-accuracy of the recipes, and accuracy against training-set size.

Time to accuracy: each recipe runs with a 500-image validation holdout; the curve is the
cumulative training time against validation accuracy after each epoch, plus the final
full-test-set figure. Training-set size: a linear probe on cached frozen features (every size up
to 60,000) and full fine-tuning with the mnist1000-fast recipe (sizes up to 3,000), each tested
on all 10,000 test images. Writes JSON and two PNG plots to benchmarks/results/.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, data_dir, run_cli, write_result  # noqa: E402

RECIPES = {"mnist1000-fast": [], "default": [], "mnist1000-best": []}
PROBE = [
    "--preset",
    "default",
    "--freeze",
    "backbone",
    "--augment",
    "none",
    "--image-size",
    "64",
    "--epochs",
    "15",
    "--lr",
    "0.003",
    "--val-source",
    "none",
]
FINETUNE = ["--preset", "mnist1000-fast"]


def time_to_accuracy(tmp: Path, recipes: list[str]) -> dict:
    curves = {}
    for recipe in recipes:
        run = run_cli(
            [
                "--preset",
                recipe,
                "--val-source",
                "holdout",
                "--val-size",
                "500",
                "--data-dir",
                data_dir(),
                "--out",
                str(tmp / f"tta-{recipe}"),
            ]
        )
        m, elapsed, points = run["metrics"], 0.0, []
        for row in m["history"]:
            elapsed += row["seconds"]
            points.append({"seconds": round(elapsed, 2), "val_acc": row.get("val_acc")})
        curves[recipe] = {
            "points": points,
            "test_accuracy": m["test_accuracy"],
            "test_samples": m["test_samples"],
            "wall_seconds": run["wall_seconds"],
        }
        print(
            f"{recipe:<16} test {100 * m['test_accuracy']:.2f}% on {m['test_samples']}  "
            f"wall {run['wall_seconds']:.0f} s"
        )
    return curves


def size_curve(tmp: Path, sizes: list[int], finetune_max: int) -> dict:
    rows = {"linear probe (frozen, cached)": {}, "fine-tune (mnist1000-fast)": {}}
    for n in sizes:
        for label, args, limit in (
            ("linear probe (frozen, cached)", PROBE, 60000),
            ("fine-tune (mnist1000-fast)", FINETUNE, finetune_max),
        ):
            if n > limit:
                continue
            run = run_cli(
                [
                    *args,
                    "--train-size",
                    str(n),
                    "--data-dir",
                    data_dir(),
                    "--cache-dir",
                    str(tmp / "cache"),
                    "--out",
                    str(tmp / f"size-{n}-{len(rows[label])}-{label[:4]}"),
                ]
            )
            m = run["metrics"]
            rows[label][n] = {
                "test_accuracy": m["test_accuracy"],
                "test_samples": m["test_samples"],
                "wall_seconds": run["wall_seconds"],
            }
            print(
                f"{label:<32} n={n:>6}  test {100 * m['test_accuracy']:.2f}% on {m['test_samples']}  "
                f"wall {run['wall_seconds']:.0f} s"
            )
    return rows


def plot(curves: dict, sizes: dict, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if curves:
        _plot_time(plt, curves, RESULTS / f"{name}_time_to_accuracy.png")
    if any(sizes.values()):
        _plot_sizes(plt, sizes, RESULTS / f"{name}_accuracy_vs_train_size.png")


def _plot_time(plt, curves: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for recipe, c in curves.items():
        ax.plot(
            [p["seconds"] for p in c["points"]], [100 * p["val_acc"] for p in c["points"]], "o-", ms=3, label=recipe
        )
    ax.set(xlabel="training time (s)", ylabel="validation accuracy (%)", title="Time to accuracy (1,000 MNIST images)")
    ax.set_ylim(90, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=110, bbox_inches="tight")


def _plot_sizes(plt, sizes: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, points in sizes.items():
        ns = sorted(points)
        ax.plot(ns, [100 * points[n]["test_accuracy"] for n in ns], "o-", label=label)
    ax.set_xscale("log")
    ax.set(
        xlabel="training images",
        ylabel="test accuracy (%, 10,000 images)",
        title="Accuracy vs training-set size (EfficientNet-Lite0)",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--sizes", default="100,300,1000,3000,10000,60000")
    parser.add_argument("--finetune-max", type=int, default=3000)
    parser.add_argument("--name", default="curves", help="result name (JSON and plot file prefix)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tlearn-bench-curves-"))
    curves = time_to_accuracy(tmp, [r for r in args.recipes.split(",") if r])
    sizes = size_curve(tmp, [int(s) for s in args.sizes.split(",") if s], args.finetune_max)
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(curves, sizes, args.name)
    write_result(
        args.name,
        {
            "time_to_accuracy": curves,
            "accuracy_vs_train_size": {k: {str(n): v for n, v in d.items()} for k, d in sizes.items()},
            "seed": 0,
        },
    )


if __name__ == "__main__":
    main()
