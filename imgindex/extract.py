"""Extract everything the index stores about one image file, decoding it once.

JPEGs are decoded in draft mode at the smallest DCT scale (1/8, 1/4, 1/2) that keeps the
shorter side at least ``ANALYSIS_SIDE`` pixels; other formats are decoded fully and then
box-reduced to that size. Hashes and statistics are computed on that analysis image.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

DRAFT_FORMATS = ("JPEG", "MPO")
ANALYSIS_SIDE = 64  # shorter side of the analysis image, in pixels
HISTOGRAM_BINS = 16
IN_MEMORY_LIMIT = 64 * 1024 * 1024  # larger files are hashed in chunks, not held in memory
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
LEVELS = np.arange(256, dtype=np.float64)
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, as Pillow's "L" conversion

Row = dict[str, Any]


def extract(path: str) -> Row:
    """All stored fields of one file; on failure, what could be read plus ``error``."""
    row: Row = {"error": None}
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            row["size"], row["mtime_ns"] = st.st_size, st.st_mtime_ns
            source, row["sha256"] = _read_and_hash(f, path, st.st_size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(source) as im:
                row.update(_header(im))
                row.update(analyse(*_analysis_images(im, row["orientation"])))
    except Exception as exc:  # any failure is recorded against the file, never fatal
        row["error"] = describe_error(exc)
    return row


def _read_and_hash(f: io.BufferedReader, path: str, size: int) -> tuple[io.BytesIO | str, str]:
    """Return what to open (bytes in memory, or the path for huge files) and the sha256."""
    if size <= IN_MEMORY_LIMIT:
        data = f.read()
        return io.BytesIO(data), hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    for chunk in iter(lambda: f.read(1 << 20), b""):
        digest.update(chunk)
    return path, digest.hexdigest()


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


def _analysis_images(im: Image.Image, orientation: int | None) -> tuple[Image.Image, Image.Image]:
    """Decode once, at the smallest scale that serves: (8-bit RGB for statistics, grey for hashing),
    both upright (EXIF orientation applied).

    A JPEG's draft image serves both. Other formats are decoded in full anyway, so their hash
    is taken from the full-resolution grey image (exactly ImageHash's input) and only the
    statistics image is reduced.
    """
    if im.format in DRAFT_FORMATS:
        im.draft("RGB", (ANALYSIS_SIDE, ANALYSIS_SIDE))
    im.load()
    rgb = to_rgb8(im)
    gray = rgb.convert("L") if im.format in DRAFT_FORMATS or rgb.mode != im.mode else im.convert("L")
    rgb, gray = upright(rgb, gray, orientation=orientation)
    factor = min(rgb.size) // ANALYSIS_SIDE
    return (rgb.reduce(factor) if factor >= 2 else rgb), gray


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


def analyse(rgb: Image.Image, gray: Image.Image) -> Row:
    """Hashes and statistics of an 8-bit RGB analysis image and a grey image to hash.

    The 64-bit dHash resizes ``gray`` exactly as ImageHash does (one Lanczos pass); the 256-bit
    one, a second signal of our own, is taken from the small analysis image."""
    hist = np.asarray(rgb.histogram(), dtype=np.float64).reshape(3, 256)
    n = max(hist[0].sum(), 1.0)
    means = hist @ LEVELS / n
    stds = np.sqrt(np.maximum(hist @ (LEVELS * LEVELS) / n - means * means, 0.0))
    row: Row = {
        "dhash": dhash_hex(gray, 8),
        "dhash_256": dhash_hex(rgb.convert("L"), 16),
        "pixel_hash": hashlib.blake2b(rgb.tobytes(), digest_size=16).hexdigest(),
        "brightness": round(float(LUMA @ means), 3),
        "histogram": histogram_json(hist / n),
    }
    for i, band in enumerate("rgb"):
        row[f"mean_{band}"] = round(float(means[i]), 3)
        row[f"std_{band}"] = round(float(stds[i]), 3)
    return row


def dhash_hex(gray: Image.Image, hash_size: int) -> str:
    """Difference hash in ImageHash's bit order (row-major, first bit most significant)."""
    small = gray.resize((hash_size + 1, hash_size), Image.Resampling.LANCZOS)
    arr = np.asarray(small, dtype=np.int16)
    bits = arr[:, 1:] > arr[:, :-1]
    return np.packbits(bits.flatten()).tobytes().hex()


def histogram_json(shares: np.ndarray) -> str:
    """Share of pixels in each of 16 equal bins, per channel, from a 3x256 histogram of shares."""
    coarse = shares.reshape(3, HISTOGRAM_BINS, 256 // HISTOGRAM_BINS).sum(axis=2)
    return json.dumps({band: np.round(coarse[i], 5).tolist() for i, band in enumerate("rgb")}, separators=(",", ":"))


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
