"""show-batch: training inputs drawn as the model receives them."""

import torch
from PIL import Image

from tests.helpers import make_folder, preprocessing
from tlearn.config import make_config
from tlearn.training.show_batch import _pixels, show_batch


def test_normalisation_is_undone_for_display():
    prep = preprocessing(4, 3, (0.5, 0.4, 0.3), (0.2, 0.25, 0.5))
    pixels = torch.rand(2, 3, 4, 4)
    normalised = (pixels - torch.tensor(prep.mean).view(1, 3, 1, 1)) / torch.tensor(prep.std).view(1, 3, 1, 1)
    torch.testing.assert_close(_pixels(normalised, prep), pixels.permute(0, 2, 3, 1))
    assert _pixels(torch.zeros(1, 1, 4, 4), preprocessing(4, 1)).shape == (1, 4, 4, 3)


def test_a_grid_of_augmented_photos_is_written(tmp_path):
    root = make_folder(tmp_path / "data", counts={"train": 4}, bad_files=0, size=96)
    config = make_config(
        {
            "dataset": "folder",
            "data_dir": str(root),
            "backbone": "resnet18",
            "weights": "none",
            "image_size": 64,
            "augment": "photo",
            "mixup": 0.4,
        }
    )
    path = show_batch(config, tmp_path / "batch.png", count=10)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 600 and image.height > 150  # 8 columns, 2 rows
