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

import errno
import hashlib
import io
import os
import stat
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from PIL import Image, UnidentifiedImageError

from .decode import (
    DRAFT_MIN_SIDE,
    DRAFT_SCALES,
    EXIF_ORIENTATION,
    MAX_PIXELS,
    PixelBudgetError,
    check_budget,
    decode,
    draft_scale,
)
from .dhash import BlockGrid, block_weights
from .measures import MEASURES, analyse

__all__ = [
    "DRAFT_MIN_SIDE",
    "DRAFT_SCALES",
    "EXTRACTOR",
    "MAX_PIXELS",
    "MEASURES",
    "BlockGrid",
    "PixelBudgetError",
    "analyse",
    "block_weights",
    "decode",
    "draft_scale",
    "extract",
]

PATH_LIMIT = 4096  # Linux's PATH_MAX, its final NUL included
EXTRACTOR = 6  # version of what extract() computes; rows of another version are extracted again
VANISHED = "file vanished during the scan"  # the error of a file that cannot be found when read
READ_BLOCK = 1 << 16  # bytes read at a time for the content hash of a large file
WHOLE_FILE = 1 << 26  # files up to this size (64 MiB) are read once, into memory, for the hash and the decode
Row = dict[str, Any]


def extract(path: str, max_pixels: int = MAX_PIXELS) -> Row:
    """All stored fields of one file; on failure, what could be read plus ``error``.

    Only regular files are opened (a FIFO, device or socket named like an image is refused after
    a stat, and opened without blocking as a second guard); an image that would decode to more
    than ``max_pixels`` pixels (a JPEG at its draft scale) is refused before it is decoded."""
    row: Row = {"error": None, "extractor": EXTRACTOR}
    try:
        refuse_irregular(os.stat(path))
        with open_regular(path) as f:
            st = os.fstat(f.fileno())
            row["size"], row["mtime_ns"] = st.st_size, st.st_mtime_ns
            if st.st_size == 0:
                raise EmptyFileError("empty file (0 bytes): nothing to decode")
            row["sha256"], source = hashed_source(f, st.st_size)
            with warnings.catch_warnings(), pixel_budget_only():
                warnings.simplefilter("ignore")
                with Image.open(source) as im:
                    row.update(_header(im))  # read before the budget check: size and mode only
                    check_budget(im, max_pixels)
                    row.update(_orientation_and_frames(im))  # may decode (a PNG's EXIF after its pixels)
                    row.update(analyse(im, row["orientation"]))
    except Exception as exc:  # noqa: BLE001 -- any failure is recorded against the file, never fatal
        row["error"] = describe_error(exc, path)
    return row


class NotRegularError(OSError):
    """A path that is no regular file: never read."""


class EmptyFileError(ValueError):
    """A file of 0 bytes (an interrupted copy or download): nothing to decode."""


FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def refuse_irregular(st: os.stat_result) -> None:
    """Raise NotRegularError, naming what it is, unless ``st`` is a regular file's."""
    if stat.S_ISREG(st.st_mode):
        return
    kind = next((name for test, name in FILE_KINDS if test(st.st_mode)), "not a regular file")
    raise NotRegularError(f"not a regular file but {kind}: it is never opened")


def open_regular(path: str) -> io.BufferedReader:
    """The file opened for reading without ever blocking on open (O_NONBLOCK: a FIFO put in the
    file's place since it was stat-ed does not wait for a writer), checked to be a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        refuse_irregular(os.fstat(fd))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class _PillowCheck:
    """Pillow's decompression-bomb limit, held off while any extraction in this process runs."""

    lock = threading.Lock()
    users = 0
    saved: int | None = None


@contextmanager
def pixel_budget_only() -> Iterator[None]:
    """Pillow's own decompression-bomb check off while extracting: it judges the header's size, and
    would refuse a huge JPEG that drafts small; check_budget judges what is decoded instead.
    Pillow's setting is restored when the last extraction in this process ends."""
    with _PillowCheck.lock:
        if _PillowCheck.users == 0:
            _PillowCheck.saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        _PillowCheck.users += 1
    try:
        yield
    finally:
        with _PillowCheck.lock:
            _PillowCheck.users -= 1
            if _PillowCheck.users == 0:
                Image.MAX_IMAGE_PIXELS = _PillowCheck.saved


def hashed_source(f: io.BufferedReader, size: int) -> tuple[str, BinaryIO]:
    """The SHA-256 of an open file of ``size`` bytes (as stat-ed) and what Pillow is to read it
    from. A file up to WHOLE_FILE bytes is read once, into memory, for both: reading it a second
    time through the file costs more system calls and copies than the one buffer. A larger file, or
    one that has grown since its stat, is hashed in blocks and read again from its start."""
    if size <= WHOLE_FILE:
        data = f.read(size + 1)
        if len(data) <= size:
            return hashlib.sha256(data).hexdigest(), io.BytesIO(data)
        f.seek(0)
    digest = sha256_of(f)
    f.seek(0)
    return digest, f


def sha256_of(f: io.BufferedReader) -> str:
    """SHA-256 of an open file's bytes, read in blocks into one buffer kept per thread: for a file
    too large to read whole (see hashed_source)."""
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
    """What the header says without decoding anything."""
    return {
        "format": im.format,
        "mode": im.mode,
        "width": im.width,
        "height": im.height,
        "channels": len(im.getbands()),
    }


def _orientation_and_frames(im: Image.Image) -> Row:
    orientation = im.getexif().get(EXIF_ORIENTATION)
    return {
        "orientation": int(orientation) if isinstance(orientation, int) else None,
        "frames": int(getattr(im, "n_frames", 1) or 1),
    }


def describe_error(exc: BaseException, path: str = "") -> str:
    """A message a user can act on."""
    if isinstance(exc, (NotRegularError, PixelBudgetError, EmptyFileError)):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
        length = len(os.fsencode(path))
        return (
            f"path too long: {length:,} bytes, over the system's limit of {PATH_LIMIT:,} (PATH_MAX), so no "
            "program can open it by its path; move the file or shorten its folders' names"
        )
    if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
        return "a link that leads nowhere (a loop of links)"
    if isinstance(exc, FileNotFoundError):
        return VANISHED
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
