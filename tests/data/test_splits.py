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


def test_stored_photos_give_the_same_view_as_the_file(tmp_path):
    """A photo kept in memory (a square of the working size) and the same file read by predict
    (decoded at the working size, then the evaluation view) give the model the same input."""
    from tlearn.data.augment import BatchPreprocessor
    from tlearn.data.images import read_image
    from tlearn.data.preprocessing import center_crop, eval_view

    prep = preprocessing(24, data_channels=3, crop_pct=0.875)
    make_folder(tmp_path, counts={"train": 3}, bad_files=0)
    split = scan_folder(tmp_path, prep)[0]["train"]
    path = sorted((tmp_path / "train" / "circle").iterdir())[2]  # 56 px: not already the working size
    side = prep.working_side
    index = next(
        i for i in range(len(split)) if torch.equal(split.images[i], center_crop(read_image(path, 3, side), side))
    )
    from_file = eval_view(read_image(path, 3, side), prep).unsqueeze(0)
    preprocess = BatchPreprocessor(prep)
    torch.testing.assert_close(preprocess(from_file), preprocess(split.images[index : index + 1]))
