"""Decoding image files and finding them in folders."""

import pytest
import torch
from PIL import Image

from tlearn.data.images import decodable, find_images, has_image_suffix, read_image, read_images
from tlearn.errors import DataError


def test_any_mode_becomes_the_asked_channels(tmp_path):
    for mode, fmt in (("L", "png"), ("RGB", "jpg"), ("RGBA", "png"), ("P", "gif"), ("LA", "png")):
        path = tmp_path / f"x_{mode}.{fmt}"
        Image.new(mode, (10, 7)).save(path)
        for channels in (1, 3):
            image = read_image(path, channels)
            assert image.shape == (channels, 7, 10) and image.dtype == torch.uint8


def test_unreadable_image_is_a_data_error(tmp_path):
    (tmp_path / "x.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read image"):
        read_image(tmp_path / "x.png", 1)


def test_image_files_need_a_suffix_and_to_decode(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "a.png").rename(tmp_path / "a.dat")
    assert decodable(tmp_path / "a.dat") and not has_image_suffix(tmp_path / "a.dat")
    (tmp_path / "b.png").write_bytes(b"text")
    assert has_image_suffix(tmp_path / "b.png") and not decodable(tmp_path / "b.png")


def test_folders_expand_and_bad_files_are_counted(tmp_path):
    (tmp_path / "sub").mkdir()
    Image.new("L", (5, 5)).save(tmp_path / "sub" / "a.png")
    (tmp_path / "sub" / "b.png").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("hello")
    found = find_images([str(tmp_path)])
    assert [p.name for p in found] == ["a.png", "b.png"]
    kept, images, bad = read_images(found, 1, skip_bad=True)
    assert [p.name for p in kept] == ["a.png"] and [p.name for p in bad] == ["b.png"] and len(images) == 1
    with pytest.raises(DataError, match="cannot read image"):
        read_images(found, 1)
    with pytest.raises(DataError, match="no such image file"):
        find_images([str(tmp_path / "missing.png")])


def test_each_odd_kind_of_file_decodes_or_is_refused(tmp_path):
    from tests.helpers import write_odd_images

    files = write_odd_images(tmp_path)
    cmyk = read_image(files["cmyk"], 3)
    assert cmyk.shape == (3, 48, 48) and cmyk[0].float().mean() > cmyk[2].float().mean()  # the red disc stays red
    deep = read_image(files["png16"], 1)
    assert deep.dtype == torch.uint8 and 245 <= int(deep.max()) <= 255 and int(deep.min()) == 0
    assert int((deep == 255).sum()) < 48  # scaled from 16 bits, not clipped at 255
    rotated = read_image(files["exif"], 3)
    assert rotated.shape == (3, 40, 24)  # stored 40 wide x 24 high, displayed upright: 24 wide x 40 high
    assert read_image(files["gif"], 3).shape == (3, 40, 40)  # the first frame
    for kind in ("truncated", "text"):
        with pytest.raises(DataError, match="cannot read image"):
            read_image(files[kind], 3)
        assert not decodable(files[kind])


def test_palette_with_transparency_webp_and_grey_photos(tmp_path):
    palette = Image.new("P", (8, 8))
    palette.info["transparency"] = 0
    palette.save(tmp_path / "p.png", transparency=0)
    Image.new("RGB", (9, 7), (10, 200, 30)).save(tmp_path / "x.webp", lossless=True)
    Image.new("L", (5, 5), 90).save(tmp_path / "g.jpg")
    assert read_image(tmp_path / "p.png", 3).shape == (3, 8, 8)
    assert read_image(tmp_path / "x.webp", 3)[:, 0, 0].tolist() == [10, 200, 30]
    assert read_image(tmp_path / "g.jpg", 3).shape == (3, 5, 5)


def test_huge_jpeg_is_decoded_reduced_to_the_working_size(tmp_path, monkeypatch):
    from PIL import JpegImagePlugin

    Image.new("RGB", (4000, 3000), (120, 60, 30)).save(tmp_path / "big.jpg", quality=80)
    scales = []
    original = JpegImagePlugin.JpegImageFile.draft

    def recording(self, mode, size):
        result = original(self, mode, size)
        scales.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", recording)
    image = read_image(tmp_path / "big.jpg", 3, short_side=256)
    assert image.shape == (3, 256, 341) and abs(int(image[0, 100, 100]) - 120) <= 3
    assert scales == [(500, 375)]  # decoded at 1/8 scale (still above 256 px), not the full 12 MP


def test_files_are_decoded_in_parallel_and_failures_listed(tmp_path):
    from tlearn.data.images import read_image_files

    paths = []
    for i in range(12):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (30 + i, 20), (i, i, i)).save(paths[-1])
    paths.insert(3, tmp_path / "bad.png")
    paths[3].write_bytes(b"x")
    images, bad = read_image_files(paths, 3, short_side=16, workers=2)
    assert bad == [tmp_path / "bad.png"] and images[3] is None
    assert all(min(img.shape[1:]) == 16 for img in images if img is not None)


def test_file_objects_read_like_files_and_too_many_pixels_are_refused_from_the_header(tmp_path):
    import io

    Image.new("L", (30, 20), 200).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    assert torch.equal(read_image(io.BytesIO(data), 3), read_image(tmp_path / "a.png", 3))
    with pytest.raises(DataError, match="too many pixels"):
        read_image(io.BytesIO(data), 1, max_pixels=599)
    assert read_image(io.BytesIO(data), 1, max_pixels=600).shape == (1, 20, 30)
    with pytest.raises(DataError, match="cannot read image upload: not an image format"):
        read_image(io.BytesIO(b"text"), 1)
