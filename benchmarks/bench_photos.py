"""Benchmark: the photo path on flowers12 (12 classes, 720 training / 240 test photos).

Measures images/s of decoding (the whole folder, at the 256-px working size of a 224-px model, one
thread and a thread per core), of the photo augmentation (random resized crop, flip, then
normalisation) and of the evaluation view, then times ``tlearn train --data-dir flowers12`` with
no other flag (the data-aware defaults) and the linear probe beside it, each in a child process with
an empty feature cache. Target (issue 11): the defaults in <= 2 min at >= the probe's accuracy.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, run_cli, write_result  # noqa: E402


def rate(fn, n: int, repeat: int = 3) -> float:
    """Images per second of ``fn`` (best of ``repeat``: the least disturbed run)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return n / best


def throughput(folder: Path) -> dict:
    import torch

    from tlearn.data.augment import BatchPreprocessor
    from tlearn.data.images import has_image_suffix, read_image_files
    from tlearn.data.preprocessing import Preprocessing, center_crop

    paths = sorted(p for p in folder.rglob("*") if has_image_suffix(p))
    prep = Preprocessing(224, 3, (0.5,) * 3, (0.5,) * 3, data_channels=3, crop_pct=0.875)
    side = prep.working_side
    cores = os.cpu_count() or 1
    decode_1 = rate(lambda: read_image_files(paths, 3, side, workers=1), len(paths), repeat=1)
    decode_n = rate(lambda: read_image_files(paths, 3, side, workers=cores), len(paths), repeat=1)
    images, _ = read_image_files(paths[:256], 3, side)
    batch = torch.stack([center_crop(img, side) for img in images])
    augment = BatchPreprocessor(prep, "photo")
    return {
        "photos": len(paths),
        "decode_images_per_s_1_thread": round(decode_1, 1),
        f"decode_images_per_s_{cores}_threads": round(decode_n, 1),
        "photo_augmentation_images_per_s": round(rate(lambda: augment(batch, train=True), len(batch)), 1),
        "eval_view_images_per_s": round(rate(lambda: augment(batch, train=False), len(batch)), 1),
    }


def main() -> None:
    flowers = Path(data_dir()) / "flowers12"
    speeds = throughput(flowers)
    for key, value in speeds.items():
        print(f"{key:<40} {value}")
    tmp = Path(tempfile.mkdtemp(prefix="tlearn-bench-photos-"))
    runs = {}
    cases = {"defaults": [], "linear probe": ["--freeze", "backbone", "--epochs", "20", "--lr", "0.003"]}
    for name, extra in cases.items():
        for seed in (0, 1, 2):
            out = tmp / f"{name.replace(' ', '-')}-{seed}"
            run = run_cli(
                [
                    "--data-dir",
                    str(flowers),
                    "--seed",
                    str(seed),
                    "--cache-dir",
                    str(out / "cache"),
                    *extra,
                    "--out",
                    str(out / "run"),
                ]
            )
            m = run["metrics"]
            runs[f"{name} seed {seed}"] = {
                "test_accuracy": m["test_accuracy"],
                "test_samples": m["test_samples"],
                "wall_seconds": run["wall_seconds"],
                "train_seconds": m["train_seconds"],
            }
            print(
                f"{name:<14} seed {seed}: {100 * m['test_accuracy']:.2f}% on {m['test_samples']}, "
                f"{run['wall_seconds']:.1f} s wall"
            )
    write_result("photos", {"throughput": speeds, "runs": runs, "target": "defaults <= 120 s at >= probe accuracy"})


if __name__ == "__main__":
    main()
