"""Decoding image files and finding them in folders."""

import pytest
import torch
from PIL import Image

from tlearn.data.images import decodable, find_images, is_image_file, read_image, read_images
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
    assert decodable(tmp_path / "a.dat") and not is_image_file(tmp_path / "a.dat")
    (tmp_path / "b.png").write_bytes(b"text")
    assert not is_image_file(tmp_path / "b.png")


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
