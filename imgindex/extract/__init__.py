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
import os
import threading
import warnings
from typing import Any

from PIL import Image, UnidentifiedImageError

from .decode import DRAFT_MIN_SIDE, DRAFT_SCALES, EXIF_ORIENTATION, decode, draft_scale
from .dhash import BlockGrid, block_weights
from .measures import MEASURES, analyse

__all__ = [
    "DRAFT_MIN_SIDE",
    "DRAFT_SCALES",
    "EXTRACTOR",
    "MEASURES",
    "BlockGrid",
    "analyse",
    "block_weights",
    "decode",
    "draft_scale",
    "extract",
]

EXTRACTOR = 4  # version of what extract() computes; rows of another version are extracted again
READ_BLOCK = 1 << 16  # bytes read at a time for the content hash
Row = dict[str, Any]


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
