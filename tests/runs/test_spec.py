"""model.json + model.safetensors: written once, read back into the same network without pickle."""

import json

import pytest
import torch

from tests.helpers import preprocessing
from tlearn.errors import RunError
from tlearn.runs.spec import ModelSpec, load_model, load_run, save_model

SPEC = ModelSpec("resnet18", "linear", 256, 0.2, ("a", "b", "c"), preprocessing(32, 3, data_channels=3, crop_pct=0.875))


def test_saved_model_reloads_to_the_same_outputs(tmp_path):
    model = SPEC.build().eval()
    save_model(tmp_path, model, SPEC)
    loaded, spec = load_model(tmp_path)
    assert spec == SPEC
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    run = load_run(tmp_path)
    assert run.classes == ["a", "b", "c"] and run.data_channels == 3 and run.preprocessor().prep == SPEC.preprocessing


def test_first_format_is_still_read():
    old = {
        "format": "tlearn-model-v1",
        "backbone": "efficientnet_lite0",
        "head": "linear",
        "head_hidden": 256,
        "dropout": 0.2,
        "classes": ["0", "1"],
        "data_channels": 1,
        "eval_crop_pct": None,
        "preprocessing": {"image_size": 80, "in_chans": 1, "mean": [0.5], "std": [0.5]},
    }
    spec = ModelSpec.from_dict(old)
    assert spec.preprocessing.image_size == 80 and spec.preprocessing.data_channels == 1
    assert spec.preprocessing.crop_pct is None and spec.classes == ("0", "1")


def test_damaged_files_are_named(tmp_path):
    save_model(tmp_path, SPEC.build(), SPEC)
    (tmp_path / "model.json").write_text(json.dumps({**SPEC.to_dict(), "classes": ["a"] * 5}))
    with pytest.raises(RunError, match="does not fit the model"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(RunError, match="is damaged"):
        load_model(tmp_path)
    with pytest.raises(RunError, match="not a finished tlearn run"):
        load_model(tmp_path / "nothing")
    with pytest.raises(RunError, match="run directory not found"):
        load_run(tmp_path / "nothing")
