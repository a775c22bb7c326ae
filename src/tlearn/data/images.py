"""Decoding image files into uint8 tensors, and finding them in folders."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Optional

import torch

from ..errors import DataError, one_line

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def is_image_file(path: Path) -> bool:
    """True for a file with an image suffix that PIL can open and verify."""
    return path.suffix.lower() in IMAGE_SUFFIXES and decodable(path)


def decodable(path: Path) -> bool:
    """True when PIL can open and verify the file, whatever its name."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.verify()
        return True
    except Exception:
        return False


def read_image(path: Path | BinaryIO, channels: int, max_pixels: Optional[int] = None) -> torch.Tensor:
    """Decode any PIL-readable image to uint8 ``[channels, H, W]`` (alpha dropped, palette expanded).

    ``path`` is a file name or a binary file object (an upload in memory); ``max_pixels`` refuses
    larger images from their header, before any memory is spent decoding them.
    """
    from PIL import Image

    name = path if isinstance(path, (str, Path)) else getattr(path, "name", "upload")
    try:
        with Image.open(path) as img:
            if max_pixels is not None and img.width * img.height > max_pixels:
                raise Image.DecompressionBombError(f"{img.width}x{img.height} pixels")
            img.load()
            if img.mode in ("RGBA", "LA", "P", "PA"):
                img = img.convert("RGBA").convert("RGB")
            img = img.convert("L" if channels == 1 else "RGB")
            data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
            return data.reshape(img.height, img.width, channels).permute(2, 0, 1).contiguous()
    except Image.DecompressionBombError:
        raise DataError(f"cannot read image {name}: too many pixels (a possible decompression bomb)") from None
    except Image.UnidentifiedImageError:  # its message repeats the file (an object's repr for uploads)
        raise DataError(f"cannot read image {name}: not an image format PIL knows") from None
    except Exception as err:  # decoders raise many types (OSError, ValueError, SyntaxError, struct.error …)
        raise DataError(f"cannot read image {name}: {one_line(err)}") from None


def find_images(paths: list[str]) -> list[Path]:
    """Expand folders (recursively) into image files; keep explicit files as given."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"no such image file or folder: {path}")
    if not found:
        raise DataError(f"no image files found in {', '.join(paths)}")
    return found


def read_images(
    paths: list[Path], channels: int, skip_bad: bool = False
) -> tuple[list[Path], list[torch.Tensor], list[Path]]:
    """Read images; with ``skip_bad`` undecodable files are skipped and returned as the third item."""
    kept, images, bad = [], [], []
    for path in paths:
        try:
            images.append(read_image(path, channels))
            kept.append(path)
        except DataError:
            if not skip_bad:
                raise
            bad.append(path)
    if not kept:
        raise DataError(f"none of the {len(bad)} file(s) is a decodable image (first: {bad[0]})")
    return kept, images, bad
