"""Resolving the preprocessing once from options and the backbone's pretrained configuration."""

from types import SimpleNamespace

import pytest
import torch

from tlearn.config import make_config
from tlearn.data.preprocessing import IMAGENET_MEAN, Preprocessing, eval_view, resolve_preprocessing

PRETRAINED = SimpleNamespace(input_size=224, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5), crop_pct=0.9)


def test_weights_statistics_and_native_size_by_default():
    prep = resolve_preprocessing(make_config({}), PRETRAINED)
    assert prep == Preprocessing(224, 3, (0.5, 0.4, 0.3), (0.2, 0.25, 0.5), data_channels=1, crop_pct=None)


def test_options_override_size_and_statistics():
    prep = resolve_preprocessing(make_config({"image_size": 64, "normalize": "imagenet"}), PRETRAINED)
    assert prep.image_size == 64 and prep.mean == IMAGENET_MEAN
    plain = resolve_preprocessing(make_config({"normalize": "none"}), PRETRAINED)
    assert plain.mean == (0.0, 0.0, 0.0) and plain.std == (1.0, 1.0, 1.0)


def test_one_channel_model_gets_one_averaged_statistic():
    prep = resolve_preprocessing(make_config({"in_chans": 1, "normalize": "imagenet"}), PRETRAINED)
    assert prep.in_chans == 1 and len(prep.mean) == 1
    assert prep.mean[0] == pytest.approx(sum(IMAGENET_MEAN) / 3)


def test_photos_are_rgb_and_centre_cropped_tensor_sets_are_not():
    photos = resolve_preprocessing(make_config({"dataset": "folder"}), PRETRAINED)
    assert photos.data_channels == 3 and photos.crop_pct == 0.9 and photos.input_mode == "RGB"
    cifar = resolve_preprocessing(make_config({"dataset": "cifar10"}), PRETRAINED)
    assert cifar.data_channels == 3 and cifar.crop_pct is None
    assert resolve_preprocessing(make_config({}), PRETRAINED).input_mode == "L"


def test_round_trip_through_a_dict():
    prep = resolve_preprocessing(make_config({"dataset": "folder", "image_size": 96}), PRETRAINED)
    assert Preprocessing.from_dict(prep.to_dict()) == prep


def test_eval_view_resizes_the_short_side_and_crops_the_centre():
    prep = Preprocessing(20, 3, (0.0,) * 3, (1.0,) * 3, 3, crop_pct=0.8)
    image = torch.zeros(3, 50, 100, dtype=torch.uint8)
    image[:, :, 45:55] = 255  # a bright bar in the middle
    view = eval_view(image, prep)
    assert view.shape == (3, 20, 20)  # short side to 25, then the centre 20 x 20
    assert view[:, :, 9:11].float().mean() > 200 and view[:, :, :3].float().mean() < 10
    whole = Preprocessing(20, 3, (0.0,) * 3, (1.0,) * 3, 1, crop_pct=None)
    assert eval_view(image, whole) is image  # tensor datasets: the batch preprocessor resizes
