"""Pretrained weights: the packaged Lite0, the torch hub cache, local files, and refusing pickles."""

import os

import numpy as np
import pytest
import torch

from tlearn.errors import WeightsError
from tlearn.models.backbones import create_backbone


def test_packaged_lite0_weights_are_imagenet():
    """Real daisy photos land in ImageNet's "daisy" class (985); irises do not (measured: 20 and 0 of 20).

    Random or wrongly mapped weights would put (almost) none of them there.
    """
    import timm
    from PIL import Image

    from tests.helpers import real_flowers_root
    from tlearn.models.weights import load_lite0_imagenet

    root = real_flowers_root()
    if root is None:
        pytest.skip("flowers12 not found: set TLEARN_DATA_DIR")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    load_lite0_imagenet(model)

    def daisy_votes(folder: str) -> int:
        paths = sorted((root / "test" / folder).iterdir())
        images = [torch.from_numpy(np.asarray(Image.open(p).convert("RGB").resize((224, 224)))) for p in paths]
        x = torch.stack(images).permute(0, 3, 1, 2).float() / 255
        with torch.no_grad():
            top = model((x - 0.5) / 0.5).argmax(1)
        return int((top == 985).sum())

    assert daisy_votes("daisy") >= 16  # of 20
    assert daisy_votes("iris") <= 3


def test_torchvision_weights_from_prefilled_cache(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = torchvision.models.resnet18()
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference.state_dict(), cache / os.path.basename(url))
    backbone = create_backbone("resnet18", "imagenet")
    torch.testing.assert_close(backbone.model.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_offline_empty_cache_names_file_and_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError) as err:
        create_backbone("resnet18", "imagenet")
    message = str(err.value)
    assert "resnet18-f37072fd.pth" in message and str(tmp_path / "hub" / "checkpoints") in message


def test_local_safetensors_weights(tmp_path):
    from safetensors.torch import save_file

    source = create_backbone("resnet18", "none")
    save_file(
        {k[len("model.") :]: v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "w.safetensors")
    )
    loaded = create_backbone("resnet18", str(tmp_path / "w.safetensors"))
    torch.testing.assert_close(loaded.model.conv1.weight, source.model.conv1.weight)


def test_weights_of_another_architecture(tmp_path):
    torch.save(create_backbone("resnet18", "none").model.state_dict(), tmp_path / "r18.pt")
    with pytest.raises(WeightsError, match="do not fit this architecture"):
        create_backbone("resnet50", str(tmp_path / "r18.pt"))


def test_pickled_object_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"w": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match="refusing to load"):
        create_backbone("resnet18", str(tmp_path / "evil.pt"))
    assert not marker.exists()
