"""Thumbnails and content types for images served from the index, made within a memory budget.

A JPEG is decoded at the smallest DCT scale that still covers the thumbnail (Pillow's draft: 1/2
to 1/8 per axis); other formats are decoded whole, so an image whose decoded frame has more than
a pixel budget of pixels gets a placeholder instead of a thumbnail (a 12000x12000 PNG would take
about 600 MB). The server also bounds how many thumbnails are decoded at once (`DecodeSlots`), and
keeps the latest ones in a cache bounded in bytes: memory stays bounded whatever is requested.
"""

from __future__ import annotations

import asyncio
import io
import threading
import warnings
import weakref
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageDraw

from ..extract.decode import EXIF_ORIENTATION, upright

DEFAULT_SIDE = 160
MIN_SIDE = 32
MAX_SIDE = 512
DEFAULT_MAX_PIXELS = 25_000_000  # decoded pixels of one thumbnail's source (after any JPEG draft)
DEFAULT_CONCURRENT = 2  # thumbnails decoded at once
CACHE_BYTES = 32 * 1024 * 1024  # JPEG bytes of the thumbnails kept

# Pillow format -> MIME type a browser may render. Anything else is served as a download.
_MIME = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


class TooLarge(Exception):
    """The image would decode to more pixels than the budget allows."""

    def __init__(self, pixels: int, budget: int) -> None:
        super().__init__(
            f"too large for a thumbnail: {pixels:,} decoded pixels, the budget is {budget:,} "
            "(imgindex serve --thumbnail-max-pixels)"
        )
        self.pixels = pixels
        self.budget = budget


def mime_type(pillow_format: str | None) -> str | None:
    """The MIME type to serve a file of this Pillow format with, or None (download only)."""
    return _MIME.get((pillow_format or "").upper())


def clamp_side(requested: str | None) -> int:
    """Thumbnail side from a query-string value, clamped to a sane range."""
    try:
        side = int(requested) if requested else DEFAULT_SIDE
    except ValueError:
        side = DEFAULT_SIDE
    return max(MIN_SIDE, min(MAX_SIDE, side))


def make_thumbnail(source: Path | BinaryIO, side: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """JPEG bytes of the image in ``source`` (a path or an open binary file) scaled to fit a
    side x side box (never enlarged), upright, RGB; TooLarge when its decoded frame would hold
    more than ``max_pixels`` pixels."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the budget decides
        try:
            image = Image.open(source)
        except Image.DecompressionBombError as error:
            raise TooLarge(2 * (Image.MAX_IMAGE_PIXELS or 0) + 1, max_pixels) from error
    with image:
        image.draft("RGB", (side, side))  # JPEG: decode at 1/2, 1/4 or 1/8 scale
        pixels = image.width * image.height
        if pixels > max_pixels:
            raise TooLarge(pixels, max_pixels)
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
        image.seek(0)
        (picture,) = upright(_shrunk(image, side), orientation=orientation)
        out = io.BytesIO()
        _displayable(picture).save(out, "JPEG", quality=85)
    return out.getvalue()


def _shrunk(image: Image.Image, side: int) -> Image.Image:
    """The frame scaled to fit side x side: converted first only where resizing needs it (16-bit,
    palette, bilevel), reduced by whole factors, then resized with Lanczos."""
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    elif image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode == "1":
        image = image.convert("L")
    else:
        image.load()
    image.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return image


def _displayable(image: Image.Image) -> Image.Image:
    """RGB, with 32-bit levels scaled to 8 bits and any transparency flattened on light grey."""
    if image.mode in ("I", "F"):
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (238, 238, 238, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


@lru_cache(maxsize=16)
def placeholder(side: int, text: str = "too large\nfor a thumbnail") -> bytes:
    """JPEG bytes of a grey side x side square saying why there is no thumbnail."""
    picture = Image.new("RGB", (side, side), (238, 238, 238))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((0, 0, side - 1, side - 1), outline=(170, 170, 170))
    draw.multiline_text((side // 2, side // 2), text, fill=(90, 90, 90), anchor="mm", align="center")
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85)
    return out.getvalue()


class ThumbnailCache:
    """The latest thumbnails, least recently used dropped first, at most ``max_bytes`` of JPEG."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> bytes | None:
        with self._lock:
            body = self._items.get(key)
            if body is not None:
                self._items.move_to_end(key)
            return body

    def put(self, key: tuple[object, ...], body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self._bytes += len(body) - (len(old) if old is not None else 0)
            self._items[key] = body
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    @property
    def size(self) -> int:
        return self._bytes


class DecodeSlots:
    """At most ``limit`` thumbnails decoded at once, per event loop (the server's one)."""

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[int, asyncio.Semaphore]] = (
            weakref.WeakKeyDictionary()
        )

    def semaphore(self, limit: int) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None or found[0] != limit:
            found = (limit, asyncio.Semaphore(limit))
            self._by_loop[loop] = found
        return found[1]
