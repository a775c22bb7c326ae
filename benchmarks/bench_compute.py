"""Which compute options help on this machine: channels_last, bf16 autocast, torch.compile.

Times training steps (forward, backward, AdamW step) and inference batches of the default model
(EfficientNet-Lite0, 1-channel stem, 80 px, batch 64) built through tlearn's own API, with each
option on and off. The defaults in tlearn follow these numbers.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402


def throughput(channels_last: bool, bf16: bool, compile_model: bool, train: bool, steps: int = 8) -> float:
    import torch
    import torch.nn.functional as F

    from tlearn.config import load_preset, make_config
    from tlearn.data.augment import BatchPreprocessor
    from tlearn.data.preprocessing import resolve_preprocessing
    from tlearn.models.backbones import backbone_info
    from tlearn.training.run import build_transfer_model

    config = make_config({**load_preset("default"), "channels_last": channels_last})
    prep = resolve_preprocessing(config, backbone_info(config.backbone))
    model = build_transfer_model(config, prep, 10)
    if not channels_last:
        model = model.to(memory_format=torch.contiguous_format)
    if compile_model:
        model.compile()
    preprocess = BatchPreprocessor(prep)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (64,))
    model.train(train)
    seen, started = 0, 0.0
    for step in range(steps + 2):  # two warm-up steps (compilation happens there)
        if step == 2:
            started = time.perf_counter()
        x = preprocess(images)
        if not channels_last:
            x = x.contiguous()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if train:
                loss = F.cross_entropy(model(x).float(), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            else:
                with torch.inference_mode():
                    model(x)
        seen += 64 if step >= 2 else 0
    return seen / (time.perf_counter() - started)


def main() -> None:
    rows = []
    variants = [
        ("baseline NCHW fp32", False, False, False),
        ("channels_last", True, False, False),
        ("channels_last + bf16", True, True, False),
        ("channels_last + compile", True, False, True),
    ]
    for name, cl, bf16, comp in variants:
        row = {
            "variant": name,
            "train_images_per_s": round(throughput(cl, bf16, comp, True), 1),
            "infer_images_per_s": round(throughput(cl, bf16, comp, False, steps=16), 1),
        }
        rows.append(row)
        print(
            f"{name:<28} train {row['train_images_per_s']:>7.1f} img/s   "
            f"inference {row['infer_images_per_s']:>7.1f} img/s",
            flush=True,
        )
    write_result("compute", {"model": "efficientnet_lite0, in_chans 1, 80 px, batch 64", "variants": rows})


if __name__ == "__main__":
    main()
