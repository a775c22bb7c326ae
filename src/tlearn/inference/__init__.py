"""Running a model on images: batched inference (with BatchNorm folding and test-time views),
``predict`` on image files, and re-evaluating a finished run on its test set.

``engine`` (batched inference over a split or a tensor), ``finished_run`` (evaluate, predict and
top-k on a finished run), ``predictions_csv`` (the CSV ``tlearn predict`` writes). The BatchNorm
folding and static-padding surgery lives in :mod:`tlearn.models.folding`; its names are re-exported
here for the importers that still take them from ``tlearn.inference``.
"""

from ..models.folding import StaticSamePadding, fold_batchnorm, folded_copy, static_same_padding
from .engine import FOLD_MIN_SAMPLES, OutputRows, batched_inference, mean_probabilities
from .finished_run import evaluate_run, evaluate_split, predict_images, top_k
from .predictions_csv import write_predictions_csv

__all__ = [
    "FOLD_MIN_SAMPLES",
    "OutputRows",
    "StaticSamePadding",
    "batched_inference",
    "evaluate_run",
    "evaluate_split",
    "fold_batchnorm",
    "folded_copy",
    "mean_probabilities",
    "predict_images",
    "static_same_padding",
    "top_k",
    "write_predictions_csv",
]
