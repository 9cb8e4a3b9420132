"""The split's images as label formats see them: image file names, and an index of paths with sizes."""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ...walk import stored_text
from .model import Size

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".mpo"}
)


def is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


@dataclass
class ImageIndex:
    """The split's images (absolute path -> (width, height), None when unreadable), with lookups.

    The lookup tables are built on first use: a re-scan with nothing to read never pays for them.
    """

    sizes: dict[str, Size | None]

    @cached_property
    def _sorted(self) -> list[str]:
        return sorted(self.sizes)

    @cached_property
    def _by_base(self) -> dict[str, str]:
        return _first_by(self._sorted, lambda p: os.path.splitext(p)[0])

    @cached_property
    def _by_name(self) -> dict[str, str]:
        return _first_by(self._sorted, os.path.basename)

    @cached_property
    def _by_stem(self) -> dict[str, str]:
        return _first_by(self._sorted, lambda p: os.path.splitext(os.path.basename(p))[0])

    def by_base(self, base: str) -> str | None:
        """The image whose path without extension is `base`."""
        return self._by_base.get(base)

    def by_name(self, name: str) -> str | None:
        return self._by_name.get(os.path.basename(name))

    def by_stem(self, stem: str) -> str | None:
        return self._by_stem.get(stem)

    def under(self, folder: str | Path) -> list[str]:
        """Images below `folder`, sorted (a range of the sorted paths)."""
        prefix = stored_text(str(folder)).rstrip(os.sep) + os.sep  # the images' paths are stored text
        start = bisect.bisect_left(self._sorted, prefix)
        end = bisect.bisect_left(self._sorted, prefix[:-1] + chr(ord(os.sep) + 1))
        return self._sorted[start:end]


def _first_by(paths: list[str], key: Callable[[str], str]) -> dict[str, str]:
    """key -> the first path (in sorted order) with that key."""
    out: dict[str, str] = {}
    for path in paths:
        out.setdefault(key(path), path)
    return out
