"""Benchmark: the photo suite — every class-folder photo set under $TLEARN_DATA_DIR, seeds 0-2.

Each set is found by its layout (``train/<class>/`` image files), not from a list kept here. For
each set and seed it measures, each in its own child process with the feature cache shared per set:

- ``default``: ``tlearn train --data-dir SET`` with no other flag (what a new user gets);
- ``probe``: tlearn's linear probe (``--freeze backbone --epochs 20 --lr 0.003``);
- ``baseline``: an independent one — scikit-learn's logistic regression (C chosen by stratified
  5-fold cross-validation, standardised features) on the frozen backbone's pooled features of every
  training image, with the same preprocessing (``baseline_worker`` below, in its own process).

Per set and seed: accuracy, balanced accuracy, wall time from process start, training images/s.
Writes ``results/suite.json`` and prints a table. Needs ``pip install -r benchmarks/requirements.txt``.

    python benchmarks/bench_suite.py [--seeds 0,1,2] [--sets flowers12,dtd10] [--cases default,probe,baseline]
    python benchmarks/bench_suite.py --extra "--quality best" --name suite-best   # another recipe, same table
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, run_cli, write_result  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
PROBE = ["--freeze", "backbone", "--epochs", "20", "--lr", "0.003"]
C_GRID = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]


def photo_sets(root: Path) -> list[Path]:
    """Folders under ``root`` laid out as ``train/<class>/<image files>`` with two or more classes."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        train = folder / "train"
        classes = [c for c in train.iterdir() if c.is_dir()] if train.is_dir() else []
        with_images = [c for c in classes if any(f.suffix.lower() in IMAGE_SUFFIXES for f in c.iterdir())]
        if len(with_images) >= 2:
            found.append(folder)
    return found


def baseline_worker(folder: str, seed: int, cache_dir: str) -> dict:
    """Logistic regression on frozen EfficientNet-Lite0 pooled features (run in a child process)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from tlearn.config import resolve_config
    from tlearn.training.distributed import launch_environment
    from tlearn.training.run import Run

    options = {"dataset": "folder", "data_dir": folder, "freeze": "backbone", "augment": "none"}
    options.update(val_source="none", seed=seed, cache_dir=cache_dir, progress=False)
    with launch_environment():
        run = Run.prepare(resolve_config(overrides=options))
    train_x = run.feed.train_loader.dataset.tensors[0].numpy()
    train_y = run.splits.train.labels.numpy()
    test_x, test_y = run.feed.test_inputs.numpy(), run.splits.test.labels.numpy()
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    search = GridSearchCV(model, {"logisticregression__C": C_GRID}, cv=folds, n_jobs=1)
    search.fit(train_x, train_y)
    predicted = search.predict(test_x)
    return {
        "test_accuracy": float(accuracy_score(test_y, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(test_y, predicted)),
        "test_samples": int(len(test_y)),
        "train_samples": int(len(train_y)),
        "C": float(search.best_params_["logisticregression__C"]),
        "cv_accuracy": float(search.best_score_),
        "classes": int(np.unique(train_y).size),
    }


def run_baseline(folder: Path, seed: int, cache_dir: Path) -> dict:
    started = time.perf_counter()
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); from bench_suite import baseline_worker; "
        "print(json.dumps(baseline_worker(sys.argv[2], int(sys.argv[3]), sys.argv[4])))"
    )
    here = str(Path(__file__).resolve().parent)
    proc = subprocess.run(
        [sys.executable, "-c", code, here, str(folder), str(seed), str(cache_dir)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"baseline failed on {folder.name}: {proc.stderr.strip()[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    return result


def run_tlearn(folder: Path, seed: int, cache_dir: Path, out: Path, extra: list[str]) -> dict:
    run = run_cli(
        ["--data-dir", str(folder), "--seed", str(seed), "--cache-dir", str(cache_dir), *extra, "--out", str(out)]
    )
    m = run["metrics"]
    result = {key: m[key] for key in ("test_accuracy", "balanced_accuracy", "test_samples", "train_samples")}
    result.update(wall_seconds=run["wall_seconds"], epochs=m["epochs"], freeze=m["freeze"])
    if m.get("recipe"):
        result["recipe"] = m["recipe"].get("chosen")
    return result


def summarise(runs: dict) -> dict:
    """Per set and case: mean accuracy over seeds, and the default's margin over the baseline."""
    table: dict = {}
    for key, row in runs.items():
        set_name, case, _ = key.split("|")
        table.setdefault(set_name, {}).setdefault(case, []).append(row)
    summary = {}
    for set_name, cases in table.items():
        entry = {}
        for case, rows in cases.items():
            entry[case] = {
                "mean_accuracy": round(statistics.mean(r["test_accuracy"] for r in rows), 5),
                "min_accuracy": round(min(r["test_accuracy"] for r in rows), 5),
                "mean_balanced_accuracy": round(statistics.mean(r["balanced_accuracy"] for r in rows), 5),
                "mean_wall_seconds": round(statistics.mean(r["wall_seconds"] for r in rows), 1),
                "seconds_per_1000_training_images": round(
                    1000 * statistics.mean(r["wall_seconds"] / r["train_samples"] for r in rows), 1
                ),
            }
        summary[set_name] = entry
    return summary


def print_table(summary: dict, cases: list[str]) -> None:
    print(f"\n{'set':<16}" + "".join(f"{c:>22}" for c in cases))
    for set_name, entry in summary.items():
        cells = []
        for case in cases:
            e = entry.get(case)
            cells.append(f"{100 * e['mean_accuracy']:6.2f}% {e['mean_wall_seconds']:6.1f} s" if e else "-")
        print(f"{set_name:<16}" + "".join(f"{c:>22}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sets", default="", help="comma-separated set names (default: every set found)")
    parser.add_argument("--cases", default="baseline,probe,default")
    parser.add_argument("--extra", default="", help="extra tlearn train flags for the default case")
    parser.add_argument("--name", default="suite", help="results/<name>.json")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    cases = args.cases.split(",")
    sets = photo_sets(Path(data_dir()))
    if args.sets:
        sets = [s for s in sets if s.name in args.sets.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="tlearn-bench-suite-"))
    started = time.perf_counter()
    runs = {}
    for folder in sets:
        cache = tmp / folder.name / "cache"
        for seed in seeds:
            for case in cases:
                out = tmp / folder.name / f"{case}-{seed}"
                if case == "baseline":
                    row = run_baseline(folder, seed, cache)
                else:
                    extra = PROBE if case == "probe" else shlex.split(args.extra)
                    row = run_tlearn(folder, seed, cache, out, extra)
                row["images_per_second"] = round(row["train_samples"] / row["wall_seconds"], 1)
                runs[f"{folder.name}|{case}|{seed}"] = row
                print(
                    f"{folder.name:<14} {case:<9} seed {seed}: {100 * row['test_accuracy']:.2f}% "
                    f"(balanced {100 * row['balanced_accuracy']:.2f}%) on {row['test_samples']}, "
                    f"{row['wall_seconds']:.1f} s" + (f", recipe {row['recipe']}" if row.get("recipe") else ""),
                    flush=True,
                )
    summary = summarise(runs)
    print_table(summary, cases)
    total = round(time.perf_counter() - started, 1)
    print(f"\ntotal {total} s")
    write_result(
        args.name,
        {
            "command": "python benchmarks/bench_suite.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "extra_flags": args.extra,
            "seeds": seeds,
            "total_seconds": total,
            "summary": summary,
            "runs": runs,
            "cpu_threads": os.cpu_count(),
        },
    )


if __name__ == "__main__":
    main()
