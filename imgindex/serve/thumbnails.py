"""Thumbnails and content types for images served from the index."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageOps

DEFAULT_SIDE = 160
MIN_SIDE = 32
MAX_SIDE = 512

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


def _displayable(image: Image.Image) -> Image.Image:
    """First frame, upright, as RGB with any transparency flattened on light grey."""
    image.seek(0)
    image = ImageOps.exif_transpose(image) or image
    if image.mode.startswith("I") or image.mode == "F":
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (238, 238, 238, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def make_thumbnail(path: Path, side: int) -> bytes:
    """JPEG bytes of the image at `path` scaled to fit a side x side box (never enlarged)."""
    with Image.open(path) as image:
        image.draft("RGB", (side, side))
        picture = _displayable(image)
    picture.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85)
    return out.getvalue()


@lru_cache(maxsize=2048)
def cached_thumbnail(path: str, size: int, mtime_ns: int, side: int) -> bytes:
    """make_thumbnail, remembered per file version (size and mtime_ns are part of the key)."""
    return make_thumbnail(Path(path), side)
