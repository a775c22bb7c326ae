"""export --format timm: a folder timm loads (local-dir:) that predicts what tlearn predicts, with a model card;
backbones and heads without a timm form get a one-line error naming the formats they can use."""

import json

import numpy as np
import pytest
import timm
import torch
import yaml
from PIL import Image

from tlearn.cli import main
from tlearn.config import make_config, resolve_config
from tlearn.data.idx import load_idx
from tlearn.data.sampling import stratified_indices
from tlearn.errors import RunError
from tlearn.inference import predict_images
from tlearn.runs.spec import LoadedRun, ModelSpec, load_run, save_model
from tlearn.runs.timm_export import export_timm
from tlearn.training.pipeline import train


def timm_predictions(folder, images: list, mode: str) -> torch.Tensor:
    """Class probabilities as a timm user gets them: timm's own transform from config.json, then the model."""
    model = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    with torch.inference_mode():
        return model(torch.stack([transform(img.convert(mode)) for img in images])).softmax(-1)


def test_default_backbone_with_its_1_channel_stem_exports_a_folder_timm_loads(mnist_run, mnist_timm_folder):
    result, root = mnist_run
    run = load_run(result.run_dir)
    folder = mnist_timm_folder
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors", "tlearn.yaml"]
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "tf_efficientnet_lite0" and config["num_classes"] == 10
    assert config["label_names"] == run.classes and config["model_args"]["in_chans"] == 1
    cfg = config["pretrained_cfg"]
    assert cfg["input_size"] == [1, 48, 48] and cfg["mean"] == [0.5] and cfg["std"] == [0.5]
    assert cfg["crop_pct"] == 1.0 and cfg["crop_mode"] == "squash" and cfg["interpolation"] == "bilinear"

    test = load_idx(root, train=False)
    idx = stratified_indices(test.labels, 200, seed=1).tolist()
    ours = predict_images(run, [test.images[i] for i in idx])
    # The same network: identical logits on identical inputs.
    model = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    inputs = torch.cat([run.preprocessor()(test.images[i].unsqueeze(0)) for i in idx[:32]])
    with torch.inference_mode():
        assert torch.allclose(model(inputs), run.model.eval()(inputs), atol=1e-5)
    # timm's own preprocessing (PIL resize) from config.json: the same answers, up to uint8 rounding.
    theirs = timm_predictions(folder, [Image.fromarray(test.images[i, 0].numpy()) for i in idx], "L")
    assert (theirs.argmax(1) == ours.argmax(1)).float().mean() >= 0.98
    assert (theirs - ours).abs().mean() < 0.01


def test_model_card_states_data_score_seed_command_and_limits(mnist_run, mnist_timm_folder):
    result, _ = mnist_run
    card = (mnist_timm_folder / "README.md").read_text()
    metrics = result.metrics
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "timm" and front["datasets"] == ["ylecun/mnist"]
    assert front["model-index"][0]["results"][0]["metrics"][0]["value"] == pytest.approx(metrics["test_accuracy"])
    assert f"**{100 * metrics['test_accuracy']:.2f} %** test accuracy on 500 test images (seed 0" in card
    assert "500 training images" in card and "MNIST" in card
    assert "tlearn train --config tlearn.yaml --data-dir DATA" in card
    assert "## Intended use and limits" in card and 'timm.create_model("local-dir:mnist-lite0"' in card
    # tlearn.yaml is the run's config without this machine's paths: the command rebuilds the same config.
    again = resolve_config(None, mnist_timm_folder / "tlearn.yaml", {"data_dir": "/data"})
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert again.model_dump(mode="json") == make_config({**saved, "data_dir": "/data"}).model_dump(mode="json")


def test_another_timm_backbone_with_random_weights_exports_too(tiny_mnist, tmp_path):
    values = {"backbone": "timm/resnet10t", "weights": "none", "image_size": 32, "epochs": 1, "train_size": 100}
    values.update(val_source="none", batch_size=50, progress=False, data_dir=str(tiny_mnist), out=str(tmp_path / "r"))
    run = load_run(train(make_config(values)).run_dir)
    info = export_timm(run, tmp_path / "resnet10t")
    assert info["architecture"] == "resnet10t" and info["max_abs_diff"] < 1e-4
    images = [Image.new("L", (28, 28), 0) for _ in range(3)]
    for k, img in enumerate(images):
        img.paste(255, (2, 2 + 5 * k, 12, 6 + 5 * k))  # bars like the generated digits
    ours = predict_images(run, [torch.from_numpy(np.array(img)).unsqueeze(0) for img in images])
    theirs = timm_predictions(tmp_path / "resnet10t", images, "RGB")  # a 3-channel model: grey as RGB
    assert torch.allclose(theirs, ours, atol=0.02) and torch.equal(theirs.argmax(1), ours.argmax(1))


def _untrained_run(tmp_path, backbone: str, head: str = "linear") -> LoadedRun:
    from tests.helpers import preprocessing

    spec = ModelSpec(backbone, head, 16, 0.2, tuple("ab"), preprocessing(32, 3))
    model = spec.build()
    save_model(tmp_path, model, spec)
    return load_run(tmp_path)


@pytest.mark.parametrize("backbone, head", [("resnet18", "linear"), ("timm/resnet10t", "mlp")])
def test_torchvision_backbones_and_the_mlp_head_name_the_formats_they_can_use(tmp_path, capsys, backbone, head):
    run = _untrained_run(tmp_path / "run", backbone, head)
    with pytest.raises(RunError, match="--format onnx or --format torchscript"):
        export_timm(run, tmp_path / "out")
    with pytest.raises(SystemExit) as done:
        main(["export", str(run.run_dir), "--format", "timm", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "onnx" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_output_folder_with_other_files_is_refused_and_a_reexport_replaces_its_own(tmp_path):
    run = _untrained_run(tmp_path / "run", "timm/resnet10t")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="^--out .* holds other files"):  # the flag `export --format timm` takes
        export_timm(run, tmp_path / "busy")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="^--out .* is a file"):
        export_timm(run, tmp_path / "file")
    export_timm(run, tmp_path / "out")
    export_timm(run, tmp_path / "out")  # again over its own files
    assert len(list((tmp_path / "out").iterdir())) == 4 and not list(tmp_path.glob(".out.tmp"))
