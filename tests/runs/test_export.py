"""Export to ONNX (usable with onnxruntime alone) and TorchScript, each checked against PyTorch."""

import importlib.util

import pytest
from PIL import Image

from tests.helpers import REPO
from tlearn.data.idx import load_idx
from tlearn.data.sampling import stratified_indices
from tlearn.errors import RunError
from tlearn.runs.export import export_onnx, export_torchscript
from tlearn.runs.spec import load_run


def test_onnx_alone_reproduces_the_test_accuracy(mnist_run, tmp_path):
    result, root = mnist_run
    info = export_onnx(load_run(result.run_dir), tmp_path / "model.onnx")
    assert info["max_abs_diff"] < 1e-3 and info["opset"] >= 17
    spec = importlib.util.spec_from_file_location("onnx_classify", REPO / "examples" / "onnx_classify.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    session, meta = example.load(str(tmp_path / "model.onnx"))
    assert set(meta) >= {"class_names", "image_size", "mean", "std"}
    assert session.get_inputs()[0].shape[0] == "batch"  # dynamic batch
    test = load_idx(root, train=False)
    idx = stratified_indices(test.labels, 500, seed=0)  # the run's own test subset (seed 0)
    images = [Image.fromarray(test.images[i, 0].numpy()) for i in idx.tolist()]
    predicted = example.classify(session, meta, images)
    accuracy = sum(p == str(int(test.labels[i])) for p, i in zip(predicted, idx.tolist())) / len(idx)
    assert abs(accuracy - result.metrics["test_accuracy"]) <= 0.01


def test_torchscript_export(mnist_run, tmp_path):
    result, _ = mnist_run
    info = export_torchscript(load_run(result.run_dir), tmp_path / "model.pt")
    assert info["max_abs_diff"] < 1e-3 and (tmp_path / "model.pt").is_file()


def test_export_to_unwritable_place_is_a_clear_error(mnist_run, tmp_path):
    result, _ = mnist_run
    with pytest.raises(RunError, match="does not exist"):
        export_onnx(load_run(result.run_dir), tmp_path / "missing-folder" / "m.onnx")
    with pytest.raises(RunError, match="is a directory"):
        export_onnx(load_run(result.run_dir), tmp_path)
