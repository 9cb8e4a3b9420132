"""Decoding an image once, at the scale the analysis needs, and turning it as displayed."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

DRAFT_FORMATS = ("JPEG", "MPO")
DRAFT_MIN_SIDE = 48  # a JPEG draft's shorter side, at least (a copy at half size decodes to the same size)
DRAFT_SCALES = (8, 4, 2, 1)
EXIF_ORIENTATION = 0x0112
ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
TRANSPOSED = frozenset({5, 6, 7, 8})  # orientations that swap width and height
MAX_PIXELS = 89_478_485  # pixels decoded per image, at most, by default: Pillow's MAX_IMAGE_PIXELS


SCALE_ROWS = 256  # rows of a 16-bit or float image scaled to 8 bits at a time


class PixelBudgetError(ValueError):
    """An image that would decode to more pixels than the budget allows."""


def draft_scale(size: tuple[int, int]) -> int:
    """The JPEG DCT scale denominator to decode at: the largest that keeps the shorter side at
    least DRAFT_MIN_SIDE (1 for small images)."""
    short = min(size)
    return next((s for s in DRAFT_SCALES if short >= s * DRAFT_MIN_SIDE), 1)


def decoded_size(format: str | None, size: tuple[int, int]) -> tuple[int, int]:
    """The size an image of this format and stored size is decoded at: a JPEG's draft, else its own."""
    if format not in DRAFT_FORMATS:
        return size
    scale = draft_scale(size)
    return -(-size[0] // scale), -(-size[1] // scale)


def check_budget(im: Image.Image, max_pixels: int) -> None:
    """Raise PixelBudgetError when decoding ``im`` (at its draft scale, for a JPEG) would make more
    than ``max_pixels`` pixels; judged on the header, before anything is decoded."""
    width, height = decoded_size(im.format, im.size)
    if width * height <= max_pixels:
        return
    drafted = (width, height) != im.size
    raise PixelBudgetError(
        f"too many pixels to decode (a possible decompression bomb): {im.width}x{im.height}"
        + (f" decodes to {width}x{height}" if drafted else "")
        + f" = {width * height:,} pixels, over the budget of {max_pixels:,}; raise it with --max-pixels "
        "(with --retry-errors to read the file again)"
    )


def decode(im: Image.Image) -> int:
    """Load the image at the scale the analysis needs; return how many full-image pixels one
    decoded pixel spans along each axis (the DCT scale for a JPEG draft, else 1)."""
    full = im.size
    if im.format in DRAFT_FORMATS:
        scale = draft_scale(full)
        im.draft("RGB", (full[0] // scale, full[1] // scale))  # Pillow picks the largest scale that fits
    im.load()
    return next((s for s in DRAFT_SCALES if -(-full[0] // s) == im.width and -(-full[1] // s) == im.height), 1)


def upright(*images: Image.Image, orientation: int | None) -> tuple[Image.Image, ...]:
    """The images as displayed: the EXIF orientation applied (a rotated copy hashes the same)."""
    method = ORIENTATION_TRANSPOSE.get(orientation or 1)
    if method is None:
        return images
    return tuple(im.transpose(method) for im in images)


def to_rgb8(im: Image.Image) -> Image.Image:
    """8-bit RGB; 16-bit and float images are scaled, not clipped."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im)
        top = 65535.0 if im.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        scaled = np.empty(arr.shape, dtype=np.uint8)
        for start in range(0, arr.shape[0], SCALE_ROWS):  # in strips: no float copy of a whole large image
            rows = slice(start, start + SCALE_ROWS)
            scaled[rows] = np.clip(arr[rows].astype(np.float64) * (255.0 / top), 0, 255)
        return Image.fromarray(scaled, "L").convert("RGB")
    return im.convert("RGB")


_ARRAY_TURNS = {
    2: lambda x: x[:, ::-1],
    3: lambda x: x[::-1, ::-1],
    4: lambda x: x[::-1, :],
    5: lambda x: x.T,
    6: lambda x: np.rot90(x, -1),
    7: lambda x: x[::-1, ::-1].T,
    8: lambda x: np.rot90(x, 1),
}


def orient_array(a: NDArray[Any], orientation: int) -> NDArray[Any]:
    """A 2-D array turned as Pillow's transpose turns an image for this EXIF orientation."""
    turn = _ARRAY_TURNS.get(orientation)
    return a if turn is None else turn(a)
