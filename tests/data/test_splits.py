"""Splits held as tensors or files share one interface: views, batches, fingerprints, subsets."""

import torch

from tests.helpers import make_folder, preprocessing
from tlearn.data.folders import scan_folder
from tlearn.data.splits import ImageSplit


def test_image_split_subsets_batches_and_fingerprints():
    images = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8)
    split = ImageSplit(images, torch.arange(10), [str(i) for i in range(10)])
    part = split.subset(torch.tensor([3, 1]))
    assert part.labels.tolist() == [3, 1] and torch.equal(part.item(0), images[3])
    assert [b.shape[0] for b in split.batches(4)] == [4, 4, 2]
    assert split.fingerprint() == ImageSplit(images.clone(), torch.arange(10), split.classes).fingerprint()
    assert split.fingerprint() != part.fingerprint()
    image, label = split.dataset(True, transform=lambda x: x * 0)[2]
    assert label == 2 and int(image.sum()) == 0
    assert torch.equal(
        split.dataset(False, transform=lambda x: x * 0)[2][0], images[2]
    )  # no transform outside training


def test_file_split_eval_view_is_centre_cropped_and_train_view_random(tmp_path):
    make_folder(tmp_path, counts={"train": 2}, bad_files=0)
    split = scan_folder(tmp_path, preprocessing(24, data_channels=3, crop_pct=0.875))["train"]
    assert split.item(0).shape == (3, 24, 24) and split.item(0).dtype == torch.uint8
    assert next(split.batches(2)).shape == (2, 3, 24, 24)
    torch.manual_seed(0)
    views = [split.dataset(True)[0][0] for _ in range(3)]
    assert all(v.shape == (3, 24, 24) for v in views) and not torch.equal(views[0], views[1])
    bigger = scan_folder(tmp_path, preprocessing(32, data_channels=3, crop_pct=0.875))["train"]
    assert bigger.fingerprint() != split.fingerprint()  # the decode size is part of the cache key
