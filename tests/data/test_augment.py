"""Batched on-device preprocessing: resize, channels, normalisation, seeded augmentation, test-time views."""

import torch
import torch.nn.functional as F

from tests.helpers import preprocessing
from tlearn.data.augment import BatchPreprocessor, tta_shifts


def _batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)


def test_eval_path_resizes_replicates_and_normalises():
    prep = preprocessing(56, 3, (0.5, 0.4, 0.3), (0.2, 0.25, 0.5))
    images = _batch()
    out = BatchPreprocessor(prep)(images)
    assert out.shape == (8, 3, 56, 56) and out.dtype == torch.float32
    resized = F.interpolate(images.float() / 255, size=(56, 56), mode="bilinear", align_corners=False)
    for c, (m, s) in enumerate(zip((0.5, 0.4, 0.3), (0.2, 0.25, 0.5))):
        torch.testing.assert_close(out[:, c : c + 1], (resized - m) / s)


def test_normalisation_gives_the_plain_expressions_numbers_in_channels_last():
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    for channels in (1, 3):
        images = torch.randint(0, 256, (4, channels, 28, 28), generator=torch.Generator().manual_seed(1))
        out = BatchPreprocessor(preprocessing(28, 3, mean, std))(images.to(torch.uint8))
        plain = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        assert out.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(out, plain)  # bit for bit: cached features stay valid


def test_none_normalisation_keeps_unit_range():
    prep = preprocessing(28, 3)
    out = BatchPreprocessor(prep)(torch.tensor([[[[0, 255]]]], dtype=torch.uint8).expand(1, 1, 28, 2))
    assert out.min() == 0.0 and out.max() == 1.0


def test_one_channel_model_takes_grey_batches_and_averages_colour():
    prep = preprocessing(32, 1)
    assert BatchPreprocessor(prep)(_batch()).shape == (8, 1, 32, 32)
    colour = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    torch.testing.assert_close(BatchPreprocessor(prep)(colour), colour.float().mean(1, keepdim=True) / 255)


def test_augmentation_is_per_sample_and_seeded():
    prep = preprocessing(32, 3)
    same = _batch(1).expand(6, 1, 28, 28)
    for kind in ("seed", "digits"):
        out = BatchPreprocessor(prep, kind, seed=1)(same, train=True)
        assert out.shape == (6, 3, 32, 32)
        assert len({tuple(o.flatten()[:200].tolist()) for o in out}) == 6  # every sample differs
        again = BatchPreprocessor(prep, kind, seed=1)(same, train=True)
        torch.testing.assert_close(out, again)
        clean = BatchPreprocessor(prep, kind, seed=1)(same, train=False)
        assert torch.equal(clean[0], clean[5])  # no augmentation outside training


def test_digits_augmentation_never_flips():
    prep = preprocessing(28, 1)
    img = torch.zeros(64, 1, 28, 28, dtype=torch.uint8)
    img[:, :, 8:20, 2:6] = 255  # a bar on the left edge
    out = BatchPreprocessor(prep, "digits", seed=0)(img, train=True)
    left, right = out[..., :14].sum(dim=(1, 2, 3)), out[..., 14:].sum(dim=(1, 2, 3))
    assert bool((left > right).all())


def test_seed_augmentation_flips_about_half():
    prep = preprocessing(28, 1)
    img = torch.zeros(400, 1, 28, 28, dtype=torch.uint8)
    img[:, :, 8:20, 4:8] = 255
    out = BatchPreprocessor(prep, "seed", seed=0)(img, train=True)
    flipped = (out[..., 14:].sum(dim=(1, 2, 3)) > out[..., :14].sum(dim=(1, 2, 3))).float().mean()
    assert 0.4 < flipped < 0.6


def test_test_time_views_are_one_pixel_shifts_of_a_28px_image():
    assert tta_shifts(1) == [(0.0, 0.0)]
    prep = BatchPreprocessor(preprocessing(28, 1))  # mean 0: the zeros shifted in stay zeros
    images = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    plain = prep(images)
    views = [prep(images, shift=s) for s in tta_shifts(5)]
    assert torch.equal(views[0], plain)
    for view in views[1:]:  # each is the image moved by exactly one pixel, zeros coming in
        moved = [torch.zeros_like(plain) for _ in range(4)]
        moved[0][..., :, 1:], moved[1][..., :, :-1] = plain[..., :, :-1], plain[..., :, 1:]
        moved[2][..., 1:, :], moved[3][..., :-1, :] = plain[..., :-1, :], plain[..., 1:, :]
        assert min((view - m).abs().max().item() for m in moved) < 1e-5
    assert len({tuple(v.flatten()[:50].tolist()) for v in views}) == 5  # five different views
