"""Walk split folders: find image files and their (size, mtime_ns), nothing more.

Symlinked files are followed; symlinked folders are followed once (a folder already
visited, identified by device and inode, is skipped, so link loops end). A link that leads
nowhere (dangling, or a loop of links) is skipped and noted in the walk's ``Skips``.

Paths are stored and shown as text: a name that is not valid UTF-8 (``os.fsdecode`` gives it as a
string with surrogate escapes, which SQLite cannot store) becomes its ``stored_text``, each
undecodable byte written ``\\xNN``; its exact bytes are kept in ``images.path_bytes`` and the
walk's ``Skips.sources`` maps the text back to the name on disk. Folders whose paths are too long
for the system (``PATH_MAX``) are still listed, through file descriptors, so that their images
get a row (with the error that their path is too long) instead of vanishing.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".mpo"}
)
PATH_MAX = 4096  # bytes of a path the system accepts, its final NUL included (Linux)
NAME_MAX = 255  # bytes of one name


class FileEntry(NamedTuple):
    path: str  # absolute, as stored (stored_text)
    rel_path: str  # relative to the scanned folder, '/'-separated, as stored
    size: int
    mtime_ns: int
    source: str = ""  # the path on disk when it differs from ``path`` (a name that is not UTF-8)

    @property
    def on_disk(self) -> str:
        """The path to open."""
        return self.source or self.path


def is_image_name(name: str) -> bool:
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in IMAGE_EXTENSIONS


def is_text(path: str) -> bool:
    """True when ``path`` holds no surrogate escape (every name in it is valid UTF-8)."""
    if path.isascii():
        return True
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def stored_text(path: str) -> str:
    """The text a path is stored and shown as: itself when it is valid UTF-8, else its bytes decoded
    with each undecodable byte written ``\\xNN`` (Python's backslashreplace)."""
    if is_text(path):
        return path
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def printable(text: str) -> str:
    """A path (or any text) as one line of a terminal or a CI log: each control character (a
    newline, a tab, an escape) written as Python writes it in a string, ``\\n``, ``\\x1b``; a name
    holding a newline cannot then fake a line of its own."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def raw_bytes(path: str) -> bytes | None:
    """The exact bytes of a path that is not valid UTF-8 (what ``images.path_bytes`` keeps); None
    for every other path."""
    return None if is_text(path) else os.fsencode(path)


@dataclass
class Skips:
    """What a walk found besides image files: links leading nowhere (skipped, as stored text) and
    the on-disk names of paths stored escaped (stored text -> path on disk)."""

    links: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    linked: list[str] = field(default_factory=list)  # image files and folders reached through a link
    unreadable: list[str] = field(default_factory=list)  # folders that could not be listed (whole)


def walk_images(root: Path) -> Iterator[FileEntry]:
    """Yield every image file below ``root`` (recursively), folder by folder."""
    root_abs = os.path.abspath(root)
    prefix = len(stored_text(root_abs.rstrip(os.sep))) + 1
    skips = Skips()
    for path, size, mtime_ns in walk_stamped(root_abs, skips):
        yield FileEntry(path, relative(path, prefix), size, mtime_ns, skips.sources.get(path, ""))


def lies_within(real_path: str, real_roots: Iterable[str]) -> bool:
    """Whether a resolved path is one of the resolved folders ``real_roots`` or lies below one."""
    return any(real_path == root or real_path.startswith(root.rstrip(os.sep) + os.sep) for root in real_roots)


def relative(path: str, prefix: int) -> str:
    """Paths below a root were built by joining onto it, so the relative part is a suffix."""
    return path[prefix:].replace(os.sep, "/")


Stamped = tuple[str, int, int]  # (absolute path as stored, size, mtime_ns)


def walk_stamped(root: str, skips: Skips | None = None) -> list[Stamped]:
    """(absolute path, size, mtime_ns) of every image file below ``root``, folder by folder, in
    name order of the folders; symlinked folders are followed once (link loops end). Every entry
    named like an image that is not a folder is listed, FIFOs and devices included: extraction
    records why it is not read. Links that lead nowhere go to ``skips``."""
    found: list[Stamped] = []
    skips = skips if skips is not None else Skips()
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        if _first_visit(folder, seen):
            stack.extend(reversed(_scan_folder(folder, found, skips)))
    return found


def _first_visit(folder: str, seen: set[tuple[int, int]]) -> bool:
    """False for a folder already walked (the same device and inode, reached through a link)."""
    try:
        st = folder_stat(folder)
    except OSError:
        return False
    key = (st.st_dev, st.st_ino)
    if key in seen:
        return False
    seen.add(key)
    return True


def folder_stat(folder: str) -> os.stat_result:
    """os.stat of a folder, also when its path is longer than the system accepts."""
    try:
        return os.stat(folder)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
    fd = open_folder(folder)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def path_too_long(path: str) -> bool:
    """Is the path, in bytes, beyond what the system accepts (PATH_MAX, its NUL included)?"""
    return len(path) * 4 >= PATH_MAX and len(os.fsencode(path)) >= PATH_MAX


def open_folder(folder: str) -> int:
    """A descriptor of a folder, whatever the length of its path: the longest prefix the system
    accepts is opened by path, the rest one name at a time relative to it."""
    parts = folder.split(os.sep)
    head = 1
    while head < len(parts) and not path_too_long(os.sep.join(parts[: head + 1]) or os.sep):
        head += 1
    fd = os.open(os.sep.join(parts[:head]) or os.sep, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in parts[head:]:
            if name:
                inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _scan_folder(folder: str, found: list[Stamped], skips: Skips) -> list[str]:
    """Append the image files of one folder to ``found``; return its subfolders, sorted."""
    if len(folder) * 4 + NAME_MAX >= PATH_MAX and path_too_long(folder + os.sep + "x" * NAME_MAX):
        return _scan_long_folder(folder, found, skips)
    subfolders: list[str] = []
    extensions = IMAGE_EXTENSIONS
    escaped = not is_text(folder)
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                dot = name.rfind(".")  # is_image_name, inlined: a call per file costs 3 % of a warm walk
                try:
                    if dot > 0 and name[dot:].lower() in extensions:
                        if entry.is_dir():  # a folder named like an image is walked as a folder
                            _folder(entry, subfolders, skips)
                            continue
                        st = entry.stat()  # a FIFO or device too; a link leading nowhere raises
                        path = entry.path
                        stored = _escaped(path, skips) if escaped or not name.isascii() else path
                        found.append((stored, st.st_size, st.st_mtime_ns))
                        if entry.is_symlink():
                            skips.linked.append(stored)
                    elif entry.is_dir():
                        _folder(entry, subfolders, skips)
                except OSError:
                    _note_skip(entry, skips)
    except OSError as exc:  # what was listed is kept
        _note_unreadable(folder, exc, skips)
    return sorted(subfolders)


def _scan_long_folder(folder: str, found: list[Stamped], skips: Skips) -> list[str]:
    """_scan_folder for a folder whose entries' paths may be too long to use: listed and stat-ed
    through a descriptor of the folder."""
    subfolders: list[str] = []
    try:
        fd = open_folder(folder)
    except OSError as exc:
        _note_unreadable(folder, exc, skips)
        return []
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                path = folder + os.sep + entry.name
                try:
                    if is_image_name(entry.name) and not entry.is_dir():
                        st = entry.stat()
                        found.append((_escaped(path, skips), st.st_size, st.st_mtime_ns))
                    elif entry.is_dir():
                        subfolders.append(path)
                except OSError:
                    _note_skip(entry, skips, path)
    except OSError as exc:
        _note_unreadable(folder, exc, skips)
    finally:
        os.close(fd)
    return sorted(subfolders)


def _note_unreadable(folder: str, exc: OSError, skips: Skips) -> None:
    """A folder that exists but could not be listed (permission denied, an I/O error): noted, so
    that the images indexed below it are not taken for removed. One that vanished is not."""
    if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
        skips.unreadable.append(stored_text(folder))


def _escaped(path: str, skips: Skips) -> str:
    text = stored_text(path)
    if text != path:
        skips.sources[text] = path
    return text


def _folder(entry: os.DirEntry[str], subfolders: list[str], skips: Skips) -> None:
    """A subfolder to walk; noted when it is reached through a link."""
    subfolders.append(entry.path)
    if entry.is_symlink():
        skips.linked.append(stored_text(entry.path))


def _note_skip(entry: os.DirEntry[str], skips: Skips, path: str | None = None) -> None:
    """A link that leads nowhere (dangling, or a loop), named like an image or like a folder (no
    extension), is skipped and noted; anything else that failed vanished meanwhile."""
    try:
        if not entry.is_symlink():
            return
    except OSError:
        return
    name = entry.name
    if is_image_name(name) or "." not in name.lstrip("."):
        skips.links.append(stored_text(path or entry.path))
