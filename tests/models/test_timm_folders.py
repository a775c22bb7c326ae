"""--backbone local-dir:DIR (and hf-hub:ORG/NAME): fine-tuning from a timm model folder."""

import pytest
import torch
from safetensors.torch import load_file

from tlearn.config import make_config
from tlearn.errors import ConfigError, WeightsError
from tlearn.models.backbones import backbone_info, create_backbone
from tlearn.runs.spec import load_run
from tlearn.training.pipeline import train


def test_a_folder_gives_its_preprocessing_and_its_weights(mnist_timm_folder):
    name = f"local-dir:{mnist_timm_folder}"
    info = backbone_info(name)
    assert (info.source, info.input_size, info.mean, info.std) == ("local-dir", 48, (0.5,) * 3, (0.5,) * 3)
    saved = load_file(str(mnist_timm_folder / "model.safetensors"))
    backbone = create_backbone(name, "imagenet", in_chans=1)
    state = backbone.model.state_dict()
    trunk = [k for k in saved if not k.startswith("classifier.")]
    assert trunk and all(torch.equal(state[k], saved[k]) for k in trunk)
    # --in-chans 3 from a 1-channel folder: timm repeats the stem filter / 3, the same on a grey image.
    rgb = create_backbone(name, "imagenet", in_chans=3).eval()
    grey = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(rgb(grey.expand(-1, 3, -1, -1)), backbone.eval()(grey), atol=1e-4)
    assert not torch.equal(create_backbone(name, "none", 1).model.conv_stem.weight, saved["conv_stem.weight"])


def test_train_fine_tunes_from_a_local_folder(mnist_timm_folder, tiny_mnist, tmp_path):
    values = {"backbone": f"local-dir:{mnist_timm_folder}", "in_chans": 1, "epochs": 1, "train_size": 50}
    values.update(val_source="none", test_size=50, batch_size=50, progress=False)
    values.update(data_dir=str(tiny_mnist), out=str(tmp_path / "r"))
    result = train(make_config(values))
    run = load_run(result.run_dir)  # rebuilt from model.json: the folder names the architecture
    assert run.preprocessing.image_size == 48 and result.metrics["test_samples"] == 50
    assert run.spec.backbone == f"local-dir:{mnist_timm_folder}"


def test_missing_folders_and_offline_hub_names_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="config.json not found"):
        backbone_info(f"local-dir:{tmp_path / 'nothing'}")
    with pytest.raises(WeightsError, match="offline"):  # the tests run offline: nothing is tried
        backbone_info("hf-hub:tlearn-tests/no-such-model")
