"""Which indexed files may be served, opened safely, and how a download names them.

A file is served only when, at the moment of the request, it is still the file that was indexed
(same size and mtime) and its real path (every symlink resolved) lies inside one of the real
folders its split was scanned from (the `splits` table): a link to /etc/passwd in a split folder,
or a linked folder leading out of it, is indexed like any file but never served.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote

from ..extract import NotRegularError, open_regular, refuse_irregular
from ..walk import lies_within

ROOTS_SQL = "select root from splits where name = ?"

# RFC 5987 attr-char besides letters and digits: what filename*= may carry unencoded.
_ATTR_CHARS = "!#$&+-.^_`|~"


@dataclass(frozen=True)
class Refusal:
    """Why a file is not served, and with which HTTP status."""

    status: int
    message: str


@dataclass
class OpenedFile:
    file: BinaryIO
    info: os.stat_result


def inside(real_path: str, roots: Iterable[str]) -> bool:
    """Whether ``real_path`` (already resolved) lies in one of ``roots``, resolved now."""
    return lies_within(real_path, (os.path.realpath(root) for root in roots))


def disk_path(row: dict[str, Any]) -> str:
    """Where an images row's file is: its exact bytes when its name is not UTF-8 (``path`` then
    holds an escaped spelling, imgindex.walk), else ``path``."""
    raw = row.get("path_bytes")
    return os.fsdecode(raw) if raw else str(row["path"])


def _outside(row: dict[str, Any]) -> Refusal:
    return Refusal(403, f"Image {row['id']} lies outside the folders its split was scanned from: it is not served")


def check(row: dict[str, Any], roots: list[str]) -> os.stat_result | Refusal:
    """The stat of an images row's file, or why it is not served (gone, not a regular file,
    changed since it was indexed, or outside its split's folders)."""
    try:
        info = os.stat(disk_path(row))
    except OSError:
        return Refusal(404, f"Image {row['id']} is no longer on disk")
    problem = _stamp_problem(row, info)
    if problem is not None:
        return problem
    if not inside(os.path.realpath(disk_path(row)), roots):
        return _outside(row)
    return info


def open_checked(row: dict[str, Any], roots: list[str]) -> OpenedFile | Refusal:
    """The images row's file, opened, when ``check`` allows it; the check is made on the open file
    (its own path, its own stat), so a link swapped between the check and the read changes nothing."""
    path = disk_path(row)
    try:
        refuse_irregular(os.stat(path))  # a device or FIFO is never opened
        file = open_regular(path)
    except NotRegularError:
        return Refusal(404, f"Image {row['id']} is not a regular file")
    except OSError:
        return Refusal(404, f"Image {row['id']} is no longer on disk")
    try:
        info = os.fstat(file.fileno())
        problem = _stamp_problem(row, info)
        if problem is None and not inside(_real_path_of(file.fileno(), path, info), roots):
            problem = _outside(row)
        if problem is not None:
            file.close()
            return problem
        return OpenedFile(file, info)
    except BaseException:
        file.close()
        raise


def _stamp_problem(row: dict[str, Any], info: os.stat_result) -> Refusal | None:
    if not stat.S_ISREG(info.st_mode):
        return Refusal(404, f"Image {row['id']} is not a regular file")
    if (info.st_size, info.st_mtime_ns) != (row["size"], row["mtime_ns"]):
        return Refusal(404, f"Image {row['id']} changed since it was indexed: scan again to see it")
    return None


def _real_path_of(fd: int, path: str, info: os.stat_result) -> str:
    """The real path of an open file: the kernel's name for it on Linux; elsewhere the resolved
    path, when it still names the same file (an empty string otherwise: inside nothing)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        real = os.path.realpath(path)
        try:
            return real if os.path.samestat(os.stat(real), info) else ""
        except OSError:
            return ""


def content_disposition(name: str) -> str:
    """An RFC 6266 attachment header for any file name: an ASCII fallback (quotes, backslashes,
    control and non-ASCII characters replaced by '_') and the exact name, UTF-8 percent-encoded."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name) or "download"
    exact = quote(name.encode("utf-8", "surrogateescape"), safe=_ATTR_CHARS)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"
