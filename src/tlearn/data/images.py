"""Decoding image files into uint8 tensors, robustly and in parallel, and finding them in folders.

Every image a run or ``predict`` reads goes through :func:`read_image`: EXIF orientation applied,
16-bit and float images scaled to 8 bits, CMYK, palette and alpha images converted, huge JPEGs
decoded at a reduced scale (JPEG draft mode), and, when a working size is given, resized so that
its short side has that size. A file that fails any of this raises ``DataError``; folders are
read with :func:`read_image_files`, which decodes in a thread pool and reports the failures.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Optional, Union

import torch

from ..errors import DataError, one_line

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
Source = Union[Path, str, BinaryIO]


def has_image_suffix(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def decodable(path: Path) -> bool:
    """True when the whole file decodes (a truncated JPEG passes PIL's ``verify`` but not this)."""
    try:
        read_image(path, 3, short_side=32)
        return True
    except DataError:
        return False


def _to_8bit(img):
    """16-bit and 32-bit integer images (``I;16``, ``I``) to 8-bit grey by their full range; floats clipped."""
    import numpy as np
    from PIL import Image

    array = np.asarray(img)
    if img.mode == "F":
        return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    top = 65535 if array.max(initial=0) > 255 else 255
    return Image.fromarray((array.astype(np.float64) * (255.0 / top)).round().astype(np.uint8))


def _open(source: Source, short_side: Optional[int], max_pixels: Optional[int]):
    """The decoded PIL image in ``L``/``RGB``-convertible form, oriented and (optionally) shrunk."""
    from PIL import Image, ImageOps

    img = Image.open(source)
    if max_pixels is not None and img.width * img.height > max_pixels:  # from the header, before decoding
        raise Image.DecompressionBombError(f"{img.width}x{img.height} pixels")
    if short_side and img.format == "JPEG":
        # Decode at 1/2, 1/4 or 1/8 scale when that still leaves the working size: a 24-MP photo
        # becomes a 3-MP one at no quality cost, several times faster.
        img.draft(img.mode, (short_side, short_side))
    img.load()  # the whole file: a truncated JPEG fails here, not in the middle of an epoch
    img = ImageOps.exif_transpose(img)
    if img.mode.startswith("I") or img.mode == "F":
        img = _to_8bit(img)
    elif img.mode in ("RGBA", "LA", "P", "PA", "RGBa", "La"):
        img = img.convert("RGBA").convert("RGB")
    return img


def read_image(
    source: Source, channels: int, short_side: Optional[int] = None, max_pixels: Optional[int] = None
) -> torch.Tensor:
    """Decode an image file (or a binary file object: an upload in memory) to uint8 ``[channels, H, W]``.

    ``short_side``: resize so that the shorter side has this many pixels (PIL's antialiased
    bilinear filter), the working size of a run; None keeps the decoded size. ``max_pixels``
    refuses larger images from their header, before any memory is spent decoding them.
    """
    from PIL import Image

    name = source if isinstance(source, (str, Path)) else getattr(source, "name", "upload")
    try:
        img = _open(source, short_side, max_pixels)
        img = img.convert("L" if channels == 1 else "RGB")
        if short_side and min(img.size) != short_side:
            scale = short_side / min(img.size)
            size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
            img = img.resize(size, Image.BILINEAR, reducing_gap=3.0)
        data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
        return data.reshape(img.height, img.width, channels).permute(2, 0, 1).contiguous()
    except Image.DecompressionBombError:
        raise DataError(f"cannot read image {name}: too many pixels (a possible decompression bomb)") from None
    except Image.UnidentifiedImageError:  # its message repeats the file (an object's repr for uploads)
        raise DataError(f"cannot read image {name}: not an image format PIL knows") from None
    except Exception as err:  # decoders raise many types (OSError, ValueError, SyntaxError, struct.error …)
        raise DataError(f"cannot read image {name}: {one_line(err)}") from None


def read_image_files(
    paths: list[Path], channels: int, short_side: Optional[int] = None, workers: Optional[int] = None
) -> tuple[list[Optional[torch.Tensor]], list[Path]]:
    """Decode many files in a thread pool (PIL decodes without the GIL); ``None`` where a file failed.

    Returns the images in the order of ``paths`` and the list of files that could not be decoded.
    """

    def decode(path: Path) -> Optional[torch.Tensor]:
        try:
            return read_image(path, channels, short_side)
        except DataError:
            return None

    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        images = list(pool.map(decode, paths, chunksize=8))
    return images, [path for path, image in zip(paths, images) if image is None]


def find_images(paths: list[str]) -> list[Path]:
    """Expand folders (recursively) into image files; keep explicit files as given."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if has_image_suffix(p) and p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"no such image file or folder: {path}")
    if not found:
        raise DataError(f"no image files found in {', '.join(paths)}")
    return found


def read_images(
    paths: list[Path], channels: int, skip_bad: bool = False, short_side: Optional[int] = None
) -> tuple[list[Path], list[torch.Tensor], list[Path]]:
    """Read images; with ``skip_bad`` undecodable files are skipped and returned as the third item."""
    if not skip_bad:
        return list(paths), [read_image(p, channels, short_side) for p in paths], []
    images, bad = read_image_files(paths, channels, short_side)
    kept = [(p, img) for p, img in zip(paths, images) if img is not None]
    if not kept:
        raise DataError(f"none of the {len(bad)} file(s) is a decodable image (first: {bad[0]})")
    return [p for p, _ in kept], [img for _, img in kept], bad
