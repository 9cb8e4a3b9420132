"""Extract everything the index stores about one image file, decoding it once.

JPEGs are decoded in draft mode at the smallest DCT scale (1/8, 1/4, 1/2) that keeps the shorter
side at least ``DRAFT_MIN_SIDE`` pixels: at 1/8 each decoded pixel is the mean of an 8x8 block of
the full image. Other formats are decoded in full. Either image is then box-reduced until its
shorter side is about ``ANALYSIS_SIDE`` pixels: that is the analysis image, on which the statistics
and the pixel hash are taken.

The 64-bit dHash follows ImageHash: the grey image resized to 9x8 with Lanczos. For non-JPEG files
it is exactly that (Pillow's resize of the full grey image). For JPEGs the full image is never
decoded, so the Lanczos resize is computed from the block means: each block of the analysis image
gets the sum of the Lanczos weights the full-resolution resize gives its pixels (see
``block_weights``). The 256-bit dHash is computed that way for every format.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import warnings
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

EXTRACTOR = 2  # version of what extract() computes; rows of another version are extracted again
DRAFT_FORMATS = ("JPEG", "MPO")
DRAFT_MIN_SIDE = 48  # a JPEG draft's shorter side, at least (a copy at half size decodes to the same size)
DRAFT_SCALES = (8, 4, 2, 1)
ANALYSIS_SIDE = 64  # shorter side of the analysis image, about (never reduced below it)
HISTOGRAM_BINS = 16
READ_BLOCK = 1 << 16  # bytes read at a time for the content hash
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
LEVELS = np.stack([np.arange(256.0), np.arange(256.0) ** 2], axis=1)  # (256, 2): level, level squared
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, as Pillow's "L" conversion

_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))

Row = dict[str, Any]
Floats = NDArray[np.float64]


def extract(path: str) -> Row:
    """All stored fields of one file; on failure, what could be read plus ``error``."""
    row: Row = {"error": None, "extractor": EXTRACTOR}
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            row["size"], row["mtime_ns"] = st.st_size, st.st_mtime_ns
            row["sha256"] = sha256_of(f)
            f.seek(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(f) as im:
                    row.update(_header(im))
                    row.update(analyse(im, row["orientation"]))
    except Exception as exc:  # noqa: BLE001 -- any failure is recorded against the file, never fatal
        row["error"] = describe_error(exc)
    return row


def sha256_of(f: io.BufferedReader) -> str:
    """SHA-256 of an open file's bytes, read in blocks into one buffer kept per thread: reading a
    whole file into a fresh buffer costs more in page faults than the hashing itself."""
    view = _read_buffer()
    digest = hashlib.sha256()
    while size := f.raw.readinto(view):
        digest.update(view[:size])
    return digest.hexdigest()


_THREAD = threading.local()


def _read_buffer() -> memoryview:
    if not hasattr(_THREAD, "buffer"):
        _THREAD.buffer = memoryview(bytearray(READ_BLOCK))
    return _THREAD.buffer


def _header(im: Image.Image) -> Row:
    orientation = im.getexif().get(EXIF_ORIENTATION)
    return {
        "format": im.format,
        "mode": im.mode,
        "width": im.width,
        "height": im.height,
        "orientation": int(orientation) if isinstance(orientation, int) else None,
        "channels": len(im.getbands()),
        "frames": int(getattr(im, "n_frames", 1) or 1),
    }


def draft_scale(size: tuple[int, int]) -> int:
    """The JPEG DCT scale denominator to decode at: the largest that keeps the shorter side at
    least DRAFT_MIN_SIDE (1 for small images)."""
    short = min(size)
    return next((s for s in DRAFT_SCALES if short >= s * DRAFT_MIN_SIDE), 1)


def decode(im: Image.Image) -> int:
    """Load the image at the scale the analysis needs; return how many full-image pixels one
    decoded pixel spans along each axis (the DCT scale for a JPEG draft, else 1)."""
    full = im.size
    if im.format in DRAFT_FORMATS:
        scale = draft_scale(full)
        im.draft("RGB", (full[0] // scale, full[1] // scale))  # Pillow picks the largest scale that fits
    im.load()
    return next((s for s in DRAFT_SCALES if -(-full[0] // s) == im.width and -(-full[1] // s) == im.height), 1)


def analyse(im: Image.Image, orientation: int | None) -> Row:
    """Hashes and statistics of an opened image, decoded once (see the module docstring)."""
    full = im.size
    drafted = im.format in DRAFT_FORMATS
    block = decode(im)
    rgb = to_rgb8(im)
    factor = max(1, min(rgb.size) // ANALYSIS_SIDE)
    small = rgb.reduce(factor) if factor > 1 else rgb
    gray = np.asarray(small.convert("L"), dtype=np.float64)
    grid = BlockGrid(full, block * factor, orientation)
    row = statistics(small)
    row["dhash"] = grid.dhash(gray, 8) if drafted else full_dhash(rgb, orientation)
    row["dhash_256"] = grid.dhash(gray, 16)
    row["pixel_hash"] = pixel_hash(upright(small, orientation=orientation)[0])
    return row


def full_dhash(rgb: Image.Image, orientation: int | None) -> str:
    """ImageHash's dHash of a fully decoded image (as 8-bit RGB) as displayed: grey, Lanczos to 9x8."""
    (gray,) = upright(rgb.convert("L"), orientation=orientation)
    small = np.asarray(gray.resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    return bits_hex(small)


class BlockGrid:
    """Lanczos resizes of the full image computed from an analysis image of block means.

    ``full`` is the stored size of the full image, ``block`` how many full pixels one analysis
    pixel spans per axis; resizes come out upright (EXIF orientation applied)."""

    def __init__(self, full: tuple[int, int], block: int, orientation: int | None) -> None:
        self.full, self.block, self.orientation = full, block, orientation or 1

    def resize(self, gray: Floats, cols: int, rows: int) -> Floats:
        """The upright image resized to cols x rows, rounded to whole grey levels."""
        if self.orientation in TRANSPOSED:
            cols, rows = rows, cols
        across = block_weights(self.full[0], cols, self.block, gray.shape[1])
        down = block_weights(self.full[1], rows, self.block, gray.shape[0])
        stored = np.floor(down.T @ gray @ across + 0.5)
        return orient_array(stored, self.orientation)

    def dhash(self, gray: Floats, hash_size: int) -> str:
        return bits_hex(self.resize(gray, hash_size + 1, hash_size))


@lru_cache(maxsize=1024)  # some 10 KB a matrix: at most about 15 MB per process
def block_weights(full: int, out: int, block: int, blocks: int) -> Floats:
    """(blocks, out) matrix: the weights of a Lanczos (a=3) resize from ``full`` pixels to ``out``,
    summed over each run of ``block`` pixels (the last run may be shorter), each output's weights
    normalised to sum 1.

    The kernel is laid out as Pillow lays it: output i is centred at (i + 0.5) * full / out, and
    the kernel is widened by that scale when shrinking. A run's weight is the kernel's integral
    over the run (the sum over its pixel centres, to well under 1 % for the scales used here)."""
    scale = full / out
    stretch = max(scale, 1.0)
    centres = (np.arange(out) + 0.5) * scale
    edges = np.minimum(np.arange(blocks + 1) * block, full).astype(np.float64)
    cumulative = kernel_integral((edges[None, :] - centres[:, None]) / stretch)
    weights = np.diff(cumulative, axis=1)
    weights /= weights.sum(axis=1, keepdims=True)
    return np.ascontiguousarray(weights.T)


@lru_cache(maxsize=1)
def _kernel_table() -> tuple[Floats, Floats]:
    """Points on [-3, 3] and the Lanczos kernel's integral from -3 to each (trapezoids)."""
    x = np.linspace(-3.0, 3.0, 3001)
    values = lanczos(x)
    steps = (values[1:] + values[:-1]) * (x[1] - x[0]) / 2.0
    return x, np.concatenate(([0.0], np.cumsum(steps)))


def kernel_integral(x: Floats) -> Floats:
    """The Lanczos kernel's integral from -3 to x (0 below -3, the whole integral above 3)."""
    points, cumulative = _kernel_table()
    return np.interp(x, points, cumulative)


def lanczos(x: Floats) -> Floats:
    """The Lanczos kernel with a = 3: sinc(x) sinc(x / 3) on [-3, 3), 0 elsewhere."""
    return np.where((x >= -3.0) & (x < 3.0), np.sinc(x) * np.sinc(x / 3.0), 0.0)


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


def bits_hex(grid: NDArray[Any]) -> str:
    """Difference hash of a (n, n+1) grid in ImageHash's bit order: a bit set where a cell is
    brighter than its left neighbour, row-major, first bit most significant."""
    return np.packbits(grid[:, 1:] > grid[:, :-1]).tobytes().hex()


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
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        scaled = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, "L").convert("RGB")
    return im.convert("RGB")


def statistics(rgb: Image.Image) -> Row:
    """Mean luma, per-channel mean and std and a coarse histogram of an 8-bit RGB image."""
    hist = np.array(rgb.histogram(), dtype=np.int64).reshape(3, 256).astype(np.float64)
    n = max(hist[0].sum(), 1.0)
    moments = hist @ LEVELS / n  # (3, 2): mean and mean square per channel
    means = moments[:, 0]
    stds = np.sqrt(np.maximum(moments[:, 1] - means * means, 0.0))
    row: Row = {"brightness": round(float(LUMA @ means), 3), "histogram": histogram_json(hist / n)}
    for i, band in enumerate("rgb"):
        row[f"mean_{band}"] = round(float(means[i]), 3)
        row[f"std_{band}"] = round(float(stds[i]), 3)
    return row


def pixel_hash(rgb: Image.Image) -> str:
    """128 bits of the SHA-256 of an image's size and pixels."""
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()[:32]


def histogram_json(shares: Floats) -> str:
    """Share of pixels in each of 16 equal bins, per channel, from a 3x256 histogram of shares."""
    coarse = shares.reshape(3, HISTOGRAM_BINS, 256 // HISTOGRAM_BINS).sum(axis=2).round(5).tolist()
    return _COMPACT_JSON.encode(dict(zip("rgb", coarse)))


def describe_error(exc: BaseException) -> str:
    """A message a user can act on."""
    if isinstance(exc, FileNotFoundError):
        return "file vanished during the scan"
    if isinstance(exc, PermissionError):
        return "permission denied: the file cannot be read"
    if isinstance(exc, IsADirectoryError):
        return "not a file"
    if isinstance(exc, Image.DecompressionBombError):
        return f"decompression bomb refused: {exc}"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (Pillow cannot identify the file's content)"
    if isinstance(exc, (OSError, SyntaxError, ValueError)) and "truncated" in str(exc).lower():
        return f"truncated image: {exc}"
    return f"cannot decode: {type(exc).__name__}: {exc}"
