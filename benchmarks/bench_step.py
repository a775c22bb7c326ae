"""Benchmark: one training step of a recipe's model, with and without tlearn's CPU training levers.

A step is forward, backward and the AdamW update on a random batch at the recipe's image size,
batch size and freezing. Variants:
- ``plain``: the model as built (the step before these levers);
- ``depthwise``: with the small-map depthwise backward (``models/depthwise.py``);
- ``both``: that and the frozen stem run as a folded copy (``training/cache.FoldedStemModel``).
The variants run interleaved, ``--rounds`` times each, in one process, and the minimum and median
of the rounds' mean step times are reported: this VM's speed drifts by 10-40 % within minutes, and
interleaving spreads the drift over all variants alike. ``--kernels avx2`` re-runs it in a child on
ATen's and oneDNN's AVX2 kernels, as a CPU without AVX-512 runs them.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import KERNELS, write_result  # noqa: E402

VARIANTS = ("plain", "depthwise", "both")


def build(preset: str, variant: str):
    import torch

    import tlearn
    from tlearn.data.preprocessing import resolve_preprocessing
    from tlearn.models.backbones import backbone_info
    from tlearn.models.views import FoldedStemModel
    from tlearn.training.run import build_transfer_model

    torch.manual_seed(0)
    config = tlearn.resolve_config(preset, overrides={})
    prep = resolve_preprocessing(config, backbone_info(config.backbone))
    model = build_transfer_model(config, prep, 10).train()
    if variant == "both":
        model = FoldedStemModel(model, model.backbone.stages.index(config.freeze.stage)).train()
    return config, prep, model


def time_steps(preset: str, variant: str, steps: int) -> float:
    """Mean milliseconds of ``steps`` training steps (after two warm-up steps)."""
    import torch

    from tlearn.models.depthwise import small_map_depthwise

    config, prep, model = build(preset, variant)
    size, batch = prep.image_size, config.batch_size
    x = torch.randn(batch, prep.in_chans, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    with small_map_depthwise(model, enabled=variant != "plain"):
        for _ in range(2):
            step()
        started = time.perf_counter()
        for _ in range(steps):
            step()
    return (time.perf_counter() - started) / steps * 1000


def measure(preset: str, rounds: int, steps: int) -> dict:
    times = {v: [] for v in VARIANTS}
    for _ in range(rounds):
        for variant in VARIANTS:
            times[variant].append(round(time_steps(preset, variant, steps), 1))
    return {v: {"min_ms": min(t), "median_ms": statistics.median(t), "rounds_ms": t} for v, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", default="mnist1000-fast,mnist1000-best")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--kernels", choices=sorted(KERNELS), default="native")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kernels != "native" and not args.child:  # ATen reads its kernel choice at start-up
        cmd = [sys.executable, __file__, "--presets", args.presets, "--rounds", str(args.rounds)]
        cmd += ["--steps", str(args.steps), "--kernels", args.kernels, "--child"]
        raise SystemExit(subprocess.run(cmd, env={**os.environ, **KERNELS[args.kernels]}).returncode)
    results = {}
    for preset in args.presets.split(","):
        results[preset] = measure(preset, args.rounds, args.steps)
        row = ", ".join(f"{v} {r['min_ms']:.1f} (median {r['median_ms']:.1f})" for v, r in results[preset].items())
        print(f"{preset} [{args.kernels}]: ms a step: {row}", flush=True)
    name = "step" if args.kernels == "native" else f"step-{args.kernels}"
    write_result(name, {"kernels": args.kernels, "kernel_env": KERNELS[args.kernels], "presets": results})


if __name__ == "__main__":
    main()
