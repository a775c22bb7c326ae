"""Pretrained weights: the packaged Lite0, the torch hub cache, local files, and refusing pickles."""

import os

import pytest
import torch

from tlearn.errors import WeightsError
from tlearn.models.backbones import create_backbone


def test_packaged_lite0_weights_are_imagenet():
    """A photo of a cat (scikit-image's 'chelsea') lands in ImageNet's cat classes (281-285)."""
    import timm
    from skimage import data

    from tlearn.models.weights import load_lite0_imagenet

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    load_lite0_imagenet(model)
    for image, expected in ((data.chelsea(), range(281, 286)), (data.coffee(), {504, 967, 968})):
        x = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255
        x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
        with torch.no_grad():
            top = int(model((x - 0.5) / 0.5).argmax())
        assert top in expected


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
