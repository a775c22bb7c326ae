"""Benchmark 5: seed 000's pipeline as published against tlearn doing the same job.

"As published" is re-created in plain PyTorch the way the Keras tutorial works: per image, PIL
grey→RGB, resize to 224, a random shear/zoom/flip affine, to a float tensor in [0, 1]; then the
frozen VGG16 base (NCHW, float32) runs on every batch of every epoch, under the Flatten-Dense-
Dropout-Dense head trained with Adam. tlearn runs ``--preset seed000-vgg16`` (batched tensor
augmentation, channels_last), once in float32 and once with ``--precision bf16-mixed``.
Random weights (offline). Reduced sizes by default so it finishes in minutes on 2 cores.
"""

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, run_cli, write_result  # noqa: E402


def keras_like_augment(img, rng: random.Random):
    """shear_range=0.2 (degrees), zoom_range=0.2, horizontal_flip=True on a PIL image, per image."""
    from PIL import Image

    shear = math.radians(rng.uniform(-0.2, 0.2))
    zx, zy = rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2)
    w, h = img.size
    # Inverse map output→input around the centre, as Keras' apply_affine_transform does.
    a, b = zx, -math.sin(shear) * zy
    d, e = 0.0, math.cos(shear) * zy
    cx, cy = w / 2, h / 2
    c = cx - a * cx - b * cy
    f = cy - d * cx - e * cy
    img = img.transform((w, h), Image.AFFINE, (a, b, c, d, e, f), resample=Image.NEAREST)
    return img.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else img


def to_batch(images, train: bool, rng: random.Random):
    import numpy as np
    import torch
    from PIL import Image

    tensors = []
    for img in images:
        pil = Image.fromarray(img.numpy()[0]).convert("RGB").resize((224, 224), Image.BILINEAR)
        if train:
            pil = keras_like_augment(pil, rng)
        tensors.append(torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1))
    return torch.stack(tensors)


def published(train, test, epochs: int, batch_size: int = 32) -> dict:
    import torch
    import torchvision
    from torch import nn

    torch.manual_seed(0)
    rng = random.Random(0)
    base = torchvision.models.vgg16().features.eval()
    for p in base.parameters():
        p.requires_grad_(False)
    head = nn.Sequential(nn.Flatten(), nn.Linear(512 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    started = time.perf_counter()
    for _ in range(epochs):
        head.train()
        order = torch.randperm(len(train.labels))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            with torch.no_grad():
                feats = base(to_batch(train.images[idx], True, rng))
            loss = nn.functional.cross_entropy(head(feats), train.labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        correct = evaluate(base, head, test, batch_size, rng)  # validation on the test images, as Keras did
    correct = evaluate(base, head, test, batch_size, rng)
    return {"seconds": round(time.perf_counter() - started, 2), "test_accuracy": correct / len(test.labels)}


def evaluate(base, head, split, batch_size, rng) -> int:
    import torch

    head.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(split.labels), batch_size):
            logits = head(base(to_batch(split.images[i : i + batch_size], False, rng)))
            correct += int((logits.argmax(1) == split.labels[i : i + batch_size]).sum())
    return correct


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-size", type=int, default=200)
    parser.add_argument("--test-size", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    from tlearn.config import make_config
    from tlearn.data.dataset import build_splits

    splits = build_splits(
        make_config(
            {"data_dir": data_dir(), "train_size": args.train_size, "test_size": args.test_size, "val_source": "none"}
        )
    )
    baseline = published(splits.train, splits.test, args.epochs)
    tmp = Path(tempfile.mkdtemp(prefix="tlearn-bench-seed000-"))
    common = [
        "--preset",
        "seed000-vgg16",
        "--weights",
        "none",
        "--data-dir",
        data_dir(),
        "--train-size",
        str(args.train_size),
        "--test-size",
        str(args.test_size),
        "--epochs",
        str(args.epochs),
    ]
    rows = {
        "published (PIL per image, NCHW fp32)": {
            "wall_seconds": baseline["seconds"],
            "test_accuracy": baseline["test_accuracy"],
        }
    }
    for name, extra in (("tlearn fp32", []), ("tlearn bf16-mixed", ["--precision", "bf16-mixed"])):
        run = run_cli([*common, *extra, "--out", str(tmp / name.replace(" ", "-"))])
        rows[name] = {
            "wall_seconds": run["wall_seconds"],
            "train_seconds": run["metrics"]["train_seconds"],
            "test_accuracy": run["metrics"]["test_accuracy"],
        }
    for name, r in rows.items():
        r["speedup_vs_published"] = round(
            rows["published (PIL per image, NCHW fp32)"]["wall_seconds"] / r["wall_seconds"], 2
        )
        print(
            f"{name:<40}{r['wall_seconds']:>8.1f} s  acc {100 * r['test_accuracy']:.1f}% on {args.test_size}  "
            f"x{r['speedup_vs_published']}"
        )
    write_result(
        "seed000",
        {
            "train_size": args.train_size,
            "test_size": args.test_size,
            "epochs": args.epochs,
            "weights": "random (offline)",
            "runs": rows,
            "note": "published-pipeline time excludes Python start-up; tlearn's includes it (whole process)",
        },
    )


if __name__ == "__main__":
    main()
