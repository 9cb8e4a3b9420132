"""Walk split folders: find image files and their (size, mtime_ns), nothing more.

Symlinked files are followed; symlinked folders are followed once (a folder already
visited, identified by device and inode, is skipped, so link loops end).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".mpo"}
)


@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute
    rel_path: str  # relative to the scanned folder, '/'-separated
    size: int
    mtime_ns: int


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def walk_images(root: Path) -> Iterator[FileEntry]:
    """Yield every image file below ``root`` (recursively), sorted per folder."""
    root_abs = os.path.abspath(root)
    seen: set[tuple[int, int]] = set()
    stack = [root_abs]
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
        yield from _entries(files, root_abs)
        stack.extend(reversed(subfolders))


def _list_folder(folder: str) -> tuple[list[str], list[tuple[str, os.stat_result]]]:
    """Subfolders and image files (with their stat) of one folder, sorted by name."""
    subfolders: list[str] = []
    files: list[tuple[str, os.stat_result]] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return subfolders, files
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=True):
                subfolders.append(entry.path)
            elif is_image_name(entry.name) and entry.is_file(follow_symlinks=True):
                files.append((entry.path, entry.stat(follow_symlinks=True)))
        except OSError:
            continue  # broken link or vanished entry: nothing to index
    return subfolders, files


def _entries(files: list[tuple[str, os.stat_result]], root: str) -> Iterator[FileEntry]:
    """Paths below ``root`` were built by joining onto it, so the relative part is a suffix."""
    prefix = len(root.rstrip(os.sep)) + 1
    for path, st in files:
        yield FileEntry(path, path[prefix:].replace(os.sep, "/"), st.st_size, st.st_mtime_ns)
