"""Inference: batched evaluation with BatchNorm folding, predict on image files, re-evaluating a run."""

import csv
import subprocess
import sys

import pytest
import torch
from PIL import Image

from tlearn.data.idx import load_idx
from tlearn.data.images import read_image
from tlearn.data.splits import ImageSplit
from tlearn.inference import (
    OutputRows,
    batched_inference,
    evaluate_run,
    fold_batchnorm,
    folded_copy,
    predict_images,
    top_k,
)
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


def test_predict_cli_writes_csv_and_skips_bad_files(mnist_run, tmp_path):
    result, root = mnist_run
    images, _ = _digits(root, 6)
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(tmp_path / f"d{i}.png")
    (tmp_path / "notes.png").write_bytes(b"this is not an image")
    out = tmp_path / "pred.csv"
    args = ["predict", str(result.run_dir), str(tmp_path), "--top-k", "2", "--output", str(out)]
    proc = subprocess.run([sys.executable, "-m", "tlearn.cli", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "skipped 1 file(s)" in proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and set(rows[0]) == {"path", "label", "probability", "top_k"}
    assert all(0.0 <= float(r["probability"]) <= 1.0 for r in rows)


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


def _randomise_bn(module):
    gen = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.2)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18", "mobilenet_v3_small"])
def test_batchnorm_folding_keeps_the_outputs(name):
    from tests.helpers import preprocessing
    from tlearn.data.augment import BatchPreprocessor
    from tlearn.models.backbones import create_backbone

    backbone = create_backbone(name, "imagenet" if name == "efficientnet_lite0" else "none")
    _randomise_bn(backbone)
    backbone.eval()
    prep = BatchPreprocessor(preprocessing(64, 3, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    x = prep(torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8))
    fast = folded_copy(backbone, x)
    count = sum(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert fast is not backbone and count < sum(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())
    with torch.no_grad():
        torch.testing.assert_close(fast(x), backbone(x), rtol=1e-4, atol=1e-4)
    assert fold_batchnorm(torch.nn.Linear(2, 2)) == 0


def test_folding_is_refused_when_the_order_lies():
    """A norm declared after its conv but applied before it must not be folded into it."""

    class PreNorm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(3)

        def forward(self, x):
            return self.conv(self.bn(x))

    net = PreNorm()
    _randomise_bn(net)
    net.eval()
    assert folded_copy(net, torch.randn(4, 3, 16, 16)) is net


@pytest.mark.parametrize(
    "kernel, stride, size", [(3, 2, (96, 96)), (5, 2, (48, 48)), (3, 2, (95, 64)), (4, 2, (9, 9)), (3, 1, (10, 10))]
)
def test_static_same_padding_gives_timm_same_convolution_outputs(kernel, stride, size):
    from timm.layers import Conv2dSame

    from tlearn.inference import StaticSamePadding

    torch.manual_seed(0)
    conv = Conv2dSame(8, 8, kernel, stride, groups=8, bias=True)
    static = StaticSamePadding(conv, size)
    for shape in (size, (size[0] + 3, size[1] + 1)):  # its own size, and another one (the original path)
        x = torch.randn(2, 8, *shape)
        # a larger kernel may sum in another order on another CPU; wrong padding is off by O(1)
        torch.testing.assert_close(static(x), conv(x), rtol=1e-5, atol=1e-5)


def test_the_fast_copy_of_lite0_drops_every_same_pad_and_keeps_the_outputs():
    from timm.layers import Conv2dSame

    from tlearn.inference import StaticSamePadding
    from tlearn.models.backbones import create_backbone

    backbone = create_backbone("efficientnet_lite0", "none").eval()
    probe = torch.randn(4, 3, 96, 96)
    fast = folded_copy(backbone, probe)
    assert fast is not backbone
    static = [m for m in fast.modules() if isinstance(m, StaticSamePadding)]
    assert len(static) == 5  # the stem and the four strided depthwise convolutions
    # each padded convolution is left only as the path for other input sizes
    assert {id(m.original) for m in static} == {id(m) for m in fast.modules() if isinstance(m, Conv2dSame)}
    with torch.inference_mode():
        torch.testing.assert_close(fast(probe), backbone(probe), rtol=1e-4, atol=1e-4)


def test_output_rows_hold_the_batches_in_order_in_one_cpu_tensor():
    batches = [torch.randn(n, 3, 2) for n in (4, 4, 1)]
    rows = OutputRows(9)
    for batch in batches:
        rows.add(batch)
    assert torch.equal(rows.result(), torch.cat(batches)) and rows.result().device.type == "cpu"
    assert OutputRows(5).result().numel() == 0  # nothing added: an empty result, as torch.cat of none
