"""A finished run's inference API: metrics on a split, class probabilities of image files, the top
classes, and re-evaluating the run on its test set.

Everything goes through the run's :class:`~tlearn.data.preprocessing.Preprocessing`, so an image
file of any size or mode is classified exactly as the test set was.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..data.augment import BatchPreprocessor, tta_shifts
from ..data.preprocessing import eval_view
from ..runs.metrics import classification_metrics
from ..runs.spec import LoadedRun
from .engine import batched_inference, mean_probabilities


def evaluate_split(
    model: nn.Module,
    preprocessor: BatchPreprocessor,
    split,
    device="cpu",
    batch_size: Optional[int] = None,
    autocast_dtype: Optional[torch.dtype] = None,
    tta: int = 1,
) -> dict:
    """Metrics of ``model`` on a whole split (``tta``: test-time views, see :func:`batched_inference`)."""
    logits = batched_inference(model, preprocessor, split, batch_size, device, autocast_dtype, tta)
    return classification_metrics(split.labels, logits, split.classes)


@torch.inference_mode()
def predict_images(run: LoadedRun, images: list[torch.Tensor], batch_size: int = 64, tta: int = 1) -> torch.Tensor:
    """Class probabilities ``[N, classes]`` for uint8 images of any sizes (``tta``: shifted views averaged)."""
    shifts = tta_shifts(tta)
    preprocess = run.preprocessor()
    images = [eval_view(img, run.preprocessing) for img in images]  # the test set's resize + centre crop
    run.model.eval()
    probabilities = []
    for start in range(0, len(images), batch_size):
        # Each image is resized on its own (sizes differ), then the batch runs at once.
        chunk = images[start : start + batch_size]
        views = [torch.cat([preprocess(img.unsqueeze(0), shift=s) for img in chunk]) for s in shifts]
        probabilities.append(mean_probabilities([run.model(v) for v in views]))
    return torch.cat(probabilities) if probabilities else torch.empty(0, len(run.classes))


def top_k(probabilities: torch.Tensor, classes: list[str], k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` most likely ``(class, probability)`` pairs per row."""
    k = max(1, min(k, len(classes)))
    values, indices = probabilities.topk(k, dim=1)
    return [[(classes[i], float(v)) for v, i in zip(vs, ix)] for vs, ix in zip(values.tolist(), indices.tolist())]


def evaluate_run(run: LoadedRun, data_dir: Optional[str] = None, test_size: Optional[int] = None, tta: int = 1) -> dict:
    """Re-evaluate a run on its dataset's test split (full, or a seeded stratified subset;
    ``tta``: that many shifted views averaged per image)."""
    from ..config import make_config, read_yaml
    from ..data.dataset import build_splits

    config_path = run.run_dir / "config.yaml"
    saved = read_yaml(config_path) if config_path.is_file() else {}
    overrides = {"val_source": "none", "test_size": test_size if test_size is not None else saved.get("test_size")}
    if data_dir:
        overrides["data_dir"] = data_dir
    config = make_config({**saved, **overrides}, str(config_path))
    test = build_splits(config, run.preprocessing).test
    return evaluate_split(run.model, run.preprocessor(), test, tta=tta)
