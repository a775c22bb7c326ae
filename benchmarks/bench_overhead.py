"""Benchmark 2: tlearn's fine-tuning throughput against a bare PyTorch loop on the same job.

Both train EfficientNet-Lite0 (packaged weights, all layers) on the same 1,000 MNIST images for
4 epochs at the same resolution and batch size, with AdamW and the data path included (uint8
→ resize → normalise → channels_last). tlearn runs in a child process via the CLI with
validation off; throughput = images trained / training seconds. Target: ratio >= 0.9.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, run_cli, write_result  # noqa: E402


def bare_loop(images, labels, image_size: int, batch_size: int, epochs: int) -> list[float]:
    """The minimal hand-written loop; returns the seconds of each epoch."""
    import timm
    import torch
    import torch.nn.functional as F

    from tlearn.models.weights import load_lite0_imagenet

    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    load_lite0_imagenet(model)
    model.reset_classifier(10)
    model = model.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    mean, std = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1), torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1)
    epoch_seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        order = torch.randperm(labels.numel())
        for i in range(0, labels.numel(), batch_size):
            idx = order[i : i + batch_size]
            x = F.interpolate(images[idx].float() / 255, size=(image_size, image_size), mode="bilinear", antialias=True)
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - started)
    return epoch_seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()

    from tlearn.config import make_config
    from tlearn.data.dataset import build_splits

    splits = build_splits(
        make_config({"data_dir": data_dir(), "train_size": 1000, "val_source": "none", "test_size": 100})
    )
    bare_epochs = bare_loop(splits.train.images, splits.train.labels, args.image_size, args.batch_size, args.epochs)
    # Both sides are compared on epochs 2…E: epoch 1 holds one-off warm-up (kernel selection,
    # and Lightning's set-up on tlearn's side), reported separately below.
    bare = 1000 * (len(bare_epochs) - 1) / sum(bare_epochs[1:])
    out = Path(tempfile.mkdtemp(prefix="tlearn-bench-overhead-")) / "run"
    run = run_cli(
        [
            "--data-dir",
            data_dir(),
            "--train-size",
            "1000",
            "--test-size",
            "100",
            "--val-source",
            "none",
            "--image-size",
            str(args.image_size),
            "--batch-size",
            str(args.batch_size),
            "--epochs",
            str(args.epochs),
            "--augment",
            "none",
            "--in-chans",
            "3",
            "--out",
            str(out),
        ]
    )
    history = run["metrics"]["history"]
    steady = [row["seconds"] for row in history[1:]]
    tlearn_rate = 1000 * len(steady) / sum(steady)
    tlearn_overall = 1000 * args.epochs / run["metrics"]["train_seconds"]
    ratio = tlearn_rate / bare
    print(f"bare PyTorch loop : {bare:7.1f} images/s")
    print(f"tlearn (steady)   : {tlearn_rate:7.1f} images/s  (incl. start-up: {tlearn_overall:.1f})")
    print(f"ratio             : {ratio:.3f} (target >= 0.9)")
    write_result(
        "overhead",
        {
            "image_size": args.image_size,
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "bare_epoch_seconds": [round(t, 2) for t in bare_epochs],
            "tlearn_epoch_seconds": [row["seconds"] for row in history],
            "bare_images_per_s": round(bare, 1),
            "tlearn_images_per_s": round(tlearn_rate, 1),
            "tlearn_images_per_s_including_startup": round(tlearn_overall, 1),
            "ratio": round(ratio, 3),
        },
    )


if __name__ == "__main__":
    main()
