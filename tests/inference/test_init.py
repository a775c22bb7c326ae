"""``tlearn.inference`` still offers every name the single module had, as the same objects."""

import tlearn.inference
from tlearn.inference import engine, finished_run, predictions_csv
from tlearn.models import folding

HOMES = {
    engine: ["FOLD_MIN_SAMPLES", "OutputRows", "batched_inference", "mean_probabilities"],
    finished_run: ["evaluate_run", "evaluate_split", "predict_images", "top_k"],
    predictions_csv: ["write_predictions_csv"],
    folding: ["StaticSamePadding", "fold_batchnorm", "folded_copy", "static_same_padding"],
}


def test_every_name_is_re_exported_from_its_home():
    for home, names in HOMES.items():
        for name in names:
            assert getattr(tlearn.inference, name) is getattr(home, name), name
    assert sorted(tlearn.inference.__all__) == sorted(n for names in HOMES.values() for n in names)
