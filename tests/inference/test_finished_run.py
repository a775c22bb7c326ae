"""A finished run: predict on image files as the test set was classified, top-k, re-evaluation, TTA."""

import subprocess
import sys

import pytest
import torch
from PIL import Image

from tlearn.data.idx import load_idx
from tlearn.data.images import read_image
from tlearn.data.splits import ImageSplit
from tlearn.inference.engine import batched_inference
from tlearn.inference.finished_run import evaluate_run, predict_images, top_k
from tlearn.runs.spec import load_run

# Copies of each digit as a user might have them: mode, format, side in pixels (larger than the 28-px
# original: a smaller copy has lost pixels and is another image).
VARIANTS = [("RGB", "jpg", 64), ("RGBA", "png", 100), ("L", "bmp", 40), ("RGB", "bmp", 32), ("RGBA", "png", 56)]


def _digits(root, n):
    test = load_idx(root, train=False)
    return test.images[:n], test.labels[:n]


def _evaluation_probabilities(run, images, labels):
    """What the evaluation path (the test-set code) gives for these 28-px images."""
    split = ImageSplit(images, labels, run.classes)
    return torch.softmax(batched_inference(run.model, run.preprocessor(), split, fold=False), dim=1)


def test_predict_on_a_28px_grey_file_equals_the_evaluation_path(mnist_run, tmp_path):
    result, root = mnist_run
    run = load_run(result.run_dir)
    images, labels = _digits(root, 24)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"digit{i}.png")
        Image.fromarray(image[0].numpy()).save(paths[-1])  # lossless, the MNIST file's own pixels
    predicted = predict_images(run, [read_image(p, run.data_channels) for p in paths])
    expected = _evaluation_probabilities(run, images, labels)
    torch.testing.assert_close(predicted, expected, rtol=0, atol=1e-6)
    assert torch.equal(predicted.argmax(1), expected.argmax(1))


def test_predict_on_resized_and_recoloured_copies_agrees_with_the_evaluation_path(mnist_run, tmp_path):
    """Other sizes, modes and formats (JPEG loses detail) move the probabilities a little: on average by at
    most 0.15 in total variation (measured 0.026-0.065 per variant), and the class of hardly any digit
    the model is sure of (p >= 0.99). Not "never": the fixture's model differs with the CPU's
    floating-point order, and one trained on an AMD EPYC was sure of a 6 (p = 0.9995) that it read as a
    4 once resized to 40 or 32 px; a broken resize or normalisation moves most of them."""
    result, root = mnist_run
    run = load_run(result.run_dir)
    images, labels = _digits(root, 40)
    expected = _evaluation_probabilities(run, images, labels)
    for mode, fmt, size in VARIANTS:
        files = []
        for i, image in enumerate(images):
            files.append(tmp_path / f"{mode}-{size}-{i}.{fmt}")
            Image.fromarray(image[0].numpy()).convert(mode).resize((size, size), Image.BILINEAR).save(files[-1])
        decoded = [read_image(p, run.data_channels) for p in files]
        assert {tuple(d.shape) for d in decoded} == {(1, size, size)}
        predicted = predict_images(run, decoded)
        assert torch.allclose(predicted.sum(1), torch.ones(len(files)), atol=1e-5)
        distance = 0.5 * (predicted - expected).abs().sum(1)
        assert distance.mean() <= 0.15, (mode, fmt, size, distance.mean())
        sure = expected.max(1).values >= 0.99
        assert sure.sum() >= 10  # the fixture's model (about 90 % accurate) is sure of most digits
        kept = (predicted.argmax(1)[sure] == expected.argmax(1)[sure]).float().mean()
        assert kept >= 0.9, (mode, fmt, size, kept)


def test_top_k_orders_classes_by_probability():
    probabilities = torch.tensor([[0.1, 0.7, 0.2]])
    assert top_k(probabilities, ["a", "b", "c"], 2) == [[("b", pytest.approx(0.7)), ("c", pytest.approx(0.2))]]
    assert len(top_k(probabilities, ["a", "b", "c"], 10)[0]) == 3


def test_evaluate_matches_the_training_figure(mnist_run):
    result, root = mnist_run
    metrics = evaluate_run(load_run(result.run_dir), str(root), test_size=500)
    assert metrics["samples"] == 500
    assert metrics["accuracy"] == pytest.approx(result.metrics["test_accuracy"], abs=1e-9)


def test_test_time_augmentation_in_evaluate_and_predict(mnist_run, tmp_path):
    result, root = mnist_run
    run = load_run(result.run_dir)
    single = evaluate_run(run, test_size=300)
    averaged = evaluate_run(run, test_size=300, tta=5)
    assert averaged["samples"] == 300 and averaged["accuracy"] > 0.8
    assert averaged["loss"] != single["loss"]  # the views were really averaged
    images, _ = _digits(root, 6)
    probabilities = predict_images(run, list(images), tta=5)
    assert probabilities.shape == (6, 10) and torch.allclose(probabilities.sum(1), torch.ones(6), atol=1e-5)
    args = ["evaluate", str(result.run_dir), "--test-size", "200", "--tta", "3"]
    out = subprocess.run([sys.executable, "-m", "tlearn", *args], capture_output=True, text=True)
    assert out.returncode == 0 and "3 test-time views" in out.stdout
