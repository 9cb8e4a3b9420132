"""Walk split folders: find image files and their (size, mtime_ns), nothing more.

Symlinked files are followed; symlinked folders are followed once (a folder already
visited, identified by device and inode, is skipped, so link loops end).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, NamedTuple

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".mpo"}
)


class FileEntry(NamedTuple):
    path: str  # absolute
    rel_path: str  # relative to the scanned folder, '/'-separated
    size: int
    mtime_ns: int


def is_image_name(name: str) -> bool:
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in IMAGE_EXTENSIONS


def walk_images(root: Path) -> Iterator[FileEntry]:
    """Yield every image file below ``root`` (recursively), folder by folder."""
    root_abs = os.path.abspath(root)
    prefix = len(root_abs.rstrip(os.sep)) + 1
    for path, (size, mtime_ns) in walk_stats(root_abs):
        yield FileEntry(path, relative(path, prefix), size, mtime_ns)


def relative(path: str, prefix: int) -> str:
    """Paths below a root were built by joining onto it, so the relative part is a suffix."""
    return path[prefix:].replace(os.sep, "/")


Stamp = tuple[int, int]  # (size, mtime_ns)


def walk_stats(root: str) -> Iterator[tuple[str, Stamp]]:
    """(absolute path, (size, mtime_ns)) of every image file below ``root``; links followed once."""
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        subfolders, files = _list_folder(folder)
        yield from files
        stack.extend(reversed(subfolders))


def _list_folder(folder: str) -> tuple[list[str], list[tuple[str, Stamp]]]:
    """Subfolders (sorted by name) and image files (path, (size, mtime_ns)) of one folder."""
    subfolders: list[str] = []
    files: list[tuple[str, Stamp]] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return subfolders, files
    for entry in entries:
        name = entry.name
        dot = name.rfind(".")
        try:
            if dot > 0 and name[dot:].lower() in IMAGE_EXTENSIONS and entry.is_file():
                st = entry.stat()
                files.append((entry.path, (st.st_size, st.st_mtime_ns)))
            elif entry.is_dir():
                subfolders.append(entry.path)
        except OSError:
            continue  # broken link or vanished entry: nothing to index
    return sorted(subfolders), files
