"""The ``README.md`` model card of an exported model folder, from the run's config and metrics.

It says what the model was trained on, its test accuracy with the test-set size and seed, the
command that reproduces it, how to use it, and what it is (not) for. The YAML front matter
(``huggingface_hub.ModelCardData``) lets the Hugging Face Hub index the library, task, dataset
and score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import yaml

from .record import RunRecord, read_record
from .spec import LoadedRun

CARD_FILE = "README.md"
CONFIG_COPY = "tlearn.yaml"  # the run's config, minus this machine's paths
MACHINE_KEYS = ("data_dir", "out", "cache_dir")
# dataset option: (what the images are, name, Hugging Face dataset id or None)
DATASETS = {
    "mnist": ("28×28 grey handwritten digits, light on dark, centred", "MNIST", "ylecun/mnist"),
    "fashion-mnist": ("28×28 grey photos of clothing", "Fashion-MNIST", "zalando-datasets/fashion_mnist"),
    "kmnist": ("28×28 grey cursive Japanese characters", "Kuzushiji-MNIST", None),
    "cifar10": ("32×32 colour photos of ten object classes", "CIFAR-10", "uoft-cs/cifar10"),
    "cifar100": ("32×32 colour photos of a hundred object classes", "CIFAR-100", "uoft-cs/cifar100"),
    "svhn": ("32×32 colour crops of house-number digits", "SVHN", "ufldl-stanford/svhn"),
    "folder": ("the user's own images, one folder per class", "a folder of images", None),
    "csv": ("the user's own images, listed in a CSV file", "a CSV-listed image set", None),
}


def _read_config(run_dir: Path) -> dict:
    path = run_dir / "config.yaml"
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}


def config_for_card(run_dir: Path) -> str:
    """The run's ``config.yaml`` without the paths of the machine it ran on (``tlearn.yaml``)."""
    config = _read_config(run_dir)
    return yaml.safe_dump({k: v for k, v in config.items() if k not in MACHINE_KEYS}, sort_keys=False)


def _front_matter(name: str, config: dict, record: Optional[RunRecord]) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    _, title, hub_id = DATASETS.get(config.get("dataset", ""), ("", "", None))
    results = []
    if record is not None:
        results.append(
            EvalResult(
                task_type="image-classification",
                dataset_type=hub_id or config.get("dataset", "images"),
                dataset_name=title or "images",
                dataset_split="test",
                metric_type="accuracy",
                metric_value=round(record.test_accuracy, 6),
            )
        )
    data = ModelCardData(
        library_name="timm",
        pipeline_tag="image-classification",
        tags=["image-classification", "timm", "tlearn"],
        datasets=[hub_id] if hub_id else None,
        metrics=["accuracy"],
        model_name=name,
        eval_results=results or None,
    )
    return f"---\n{data.to_yaml()}\n---\n"


def _usage(source: str, run: LoadedRun) -> str:
    prep = run.preprocessing
    convert = {(1, 1): '.convert("L")', (1, 3): '.convert("L").convert("RGB")'}.get(
        (prep.data_channels, prep.in_chans), '.convert("RGB")'
    )
    return f"""## How to use

```python
import timm, torch
from PIL import Image

model = timm.create_model("{source}", pretrained=True).eval()
transform = timm.data.create_transform(**timm.data.resolve_data_config({{}}, model=model))
image = transform(Image.open("image.png"){convert}).unsqueeze(0)
with torch.inference_mode():
    probabilities = model(image).softmax(-1)[0]
labels = model.pretrained_cfg["label_names"]
print(labels[int(probabilities.argmax())], float(probabilities.max()))
```

The preprocessing in `config.json` is the one tlearn trained and tested with:
{prep.image_size}×{prep.image_size} pixels, {prep.in_chans} input channel(s), mean {list(prep.mean)},
std {list(prep.std)} ({"resize and centre crop" if prep.crop_pct else "the whole image resized, no crop"}).
Fine-tune it further with `tlearn train --backbone {source}`.
"""


def _score(record: Optional[RunRecord]) -> str:
    if record is None:
        return "no test score was recorded for this run"
    return (
        f"**{100 * record.test_accuracy:.2f} %** test accuracy on {record.test_samples:,} test images "
        f"(seed {record.seed}; macro F1 {record.macro_f1:.4f})"
    )


def _training(config: dict, record: Optional[RunRecord], run: LoadedRun) -> str:
    what, title, _ = DATASETS.get(config.get("dataset", ""), ("images", "images", None))
    whole = config.get("test_size") is None
    test_set = "its whole test split" if whole else "a seeded, stratified subset of its test split"
    train_samples = record.train_samples if record is not None else config.get("train_size")
    return f"""## Training data and results

- Data: {title} ({what}); {train_samples} training images
  (a seeded, class-stratified subset), validation: {config.get("val_source")}; tested on {test_set}.
- Training: `{config.get("backbone")}` with `{config.get("weights")}` weights, {config.get("epochs")} epochs,
  {config.get("optimizer")} at lr {config.get("lr")}, batch {config.get("batch_size")},
  augmentation `{config.get("augment")}`, freeze `{config.get("freeze")}`.
- Result: {_score(record)}.
- Classes ({len(run.classes)}): {", ".join(run.classes[:20])}{" …" if len(run.classes) > 20 else ""}
"""


def _reproduce(config: dict) -> str:
    data = "" if config.get("dataset") in ("folder", "csv") else " (downloaded when missing)"
    return f"""## Reproduce

```bash
tlearn train --config {CONFIG_COPY} --data-dir DATA
```

`{CONFIG_COPY}` (in this folder) is the run's resolved configuration; `DATA` is the dataset
folder{data}. The same seed on the same kind of machine gives the same numbers.
"""


def _limits(config: dict, record: Optional[RunRecord], run: LoadedRun) -> str:
    what, _, _ = DATASETS.get(config.get("dataset", ""), ("images", "images", None))
    tested = record.test_samples if record is not None else "the"
    digits = (
        "\n- It expects one centred digit, light on a dark background as in MNIST; invert photos of dark ink\n"
        "  on white paper first."
        if config.get("dataset") == "mnist"
        else ""
    )
    return f"""## Intended use and limits

- Intended for classifying images like its training data ({what})
  into its {len(run.classes)} classes: teaching, experiments, demos and a starting point for fine-tuning.
- It always answers one of its classes, even for an image of something else; look at the probability,
  and do not use it for decisions that affect people.
- The test score comes from {tested} images of the same source as the training
  data; expect less on images from elsewhere (other cameras, scanners, writers, lighting).{digits}
- Not evaluated for robustness to adversarial or corrupted inputs, nor for fairness.
"""


def model_card(run: LoadedRun, source: str) -> str:
    """The model card (``README.md``) of ``run`` exported to ``source`` (``local-dir:NAME`` or ``hf-hub:ORG/NAME``)."""
    config, record = _read_config(run.run_dir), read_record(run.run_dir)
    name = source.partition(":")[2].rsplit("/", 1)[-1]
    title = f"# {name}\n\nAn image classifier fine-tuned with tlearn (transfer learning), saved as a timm model.\n\n"
    return "\n".join(
        [
            _front_matter(name, config, record) + title,
            _usage(source, run),
            _training(config, record, run),
            _reproduce(config),
            _limits(config, record, run),
        ]
    )
