"""What an index holds, independent of the order it was built in: the rows a clean scan of the
same files must reproduce, with row ids replaced by what they name (an image's split and path, a
label file's split and path) and bookkeeping left out (scan ids, timestamps, queues).

``differences(a, b)`` counts, per table, the rows one index holds and the other does not: an
incremental index must equal a clean scan of the same files (scripts/compare_clean.py, the
property test in tests/test_incremental.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils

from . import store

Rows = Counter[tuple[Any, ...]]
ImageKey = tuple[str, str]
Differences = dict[str, tuple[Rows, Rows]]  # table -> (rows only the first holds, only the second)

IMAGE_SKIP = {"id", "scan_id"}
LABEL_FILE_SKIP = {"id", "scan_id"}


def _columns(db: sqlite_utils.Database, table: str, skip: set[str]) -> list[str]:
    return [c for c in db[table].columns_dict if c not in skip]


def _image_keys(db: sqlite_utils.Database) -> dict[int, ImageKey]:
    return {r[0]: (r[1], r[2]) for r in db.execute("SELECT id, split, path FROM images")}


def _label_file_keys(db: sqlite_utils.Database) -> dict[int, ImageKey]:
    return {r[0]: (r[1], r[2]) for r in db.execute("SELECT id, split, path FROM label_files")}


def _plain(db: sqlite_utils.Database, table: str, skip: set[str]) -> Rows:
    cols = _columns(db, table, skip)
    quoted = ", ".join(f'"{c}"' for c in cols)
    return Counter(tuple(r) for r in db.execute(f'SELECT {quoted} FROM "{table}"'))


def _by_label_file(db: sqlite_utils.Database, table: str) -> Rows:
    """Rows of a table naming label_files.id: the id replaced by the file's (split, path)."""
    files = _label_file_keys(db)
    cols = _columns(db, table, {"id", "label_file_id"})
    quoted = ", ".join(f'"{c}"' for c in cols)
    rows = db.execute(f'SELECT label_file_id, {quoted} FROM "{table}"')
    return Counter((files.get(r[0]), *r[1:]) for r in rows)


def _pairs(db: sqlite_utils.Database, table: str) -> Rows:
    """Rows of an (a, b, ...) pair table with both images named, in a stable order."""
    images = _image_keys(db)
    cols = _columns(db, table, {"a", "b", "group_id"})
    quoted = ", ".join(f'"{c}"' for c in cols)
    out: Rows = Counter()
    for a, b, *rest in db.execute(f'SELECT a, b, {quoted} FROM "{table}"'):
        ends = sorted([images.get(a) or ("?", str(a)), images.get(b) or ("?", str(b))])
        values = tuple(round(x, 4) if isinstance(x, float) else x for x in rest)
        out[ends[0] + ends[1] + values] += 1
    return out


def _groups(db: sqlite_utils.Database) -> Rows:
    """Verdict groups as (kind, grade, size, max_distance, sorted members)."""
    images = _image_keys(db)
    members: dict[int, list[ImageKey]] = {}
    for group_id, image_id in db.execute("SELECT group_id, image_id FROM verdict_members"):
        members.setdefault(group_id, []).append(images.get(image_id) or ("?", str(image_id)))
    rows = db.execute("SELECT id, kind, grade, size, max_distance FROM verdict_groups")
    return Counter((*r[1:], tuple(sorted(members.get(r[0], [])))) for r in rows)


def _label_file_images(db: sqlite_utils.Database) -> Rows:
    files = _label_file_keys(db)
    return Counter(
        (files.get(r[0]), r[1]) for r in db.execute("SELECT label_file_id, image_path FROM label_file_images")
    )


def _by_image(db: sqlite_utils.Database, table: str) -> Rows:
    """Rows of a table naming images.id (image_id): the id replaced by the image's (split, path)."""
    images = _image_keys(db)
    cols = _columns(db, table, {"image_id"})
    quoted = ", ".join(f'"{c}"' for c in cols)
    rows = db.execute(f'SELECT image_id, {quoted} FROM "{table}"')
    return Counter((images.get(r[0]), *(round(x, 4) if isinstance(x, float) else x for x in r[1:])) for r in rows)


TABLES: dict[str, Callable[[sqlite_utils.Database], Rows]] = {
    "images": lambda db: _plain(db, "images", IMAGE_SKIP),
    "label_files": lambda db: _plain(db, "label_files", LABEL_FILE_SKIP),
    "label_file_images": _label_file_images,
    "labels": lambda db: _by_label_file(db, "labels"),
    "label_problems": lambda db: _by_label_file(db, "label_problems"),
    "classes": lambda db: _plain(db, "classes", set()),
    "near_pairs": lambda db: _pairs(db, "near_pairs"),
    "verdict_pairs": lambda db: _pairs(db, "verdict_pairs"),
    "label_conflicts": lambda db: _pairs(db, "label_conflicts"),
    "verdict_groups": _groups,
    "quality_flags": lambda db: _by_image(db, "quality_flags"),
    "quality_outliers": lambda db: _by_image(db, "quality_outliers"),
}


def content(db: sqlite_utils.Database) -> dict[str, Rows]:
    """Every compared table's rows, as multisets of tuples."""
    return {name: rows(db) for name, rows in TABLES.items()}


def differences(a: sqlite_utils.Database, b: sqlite_utils.Database) -> Differences:
    """Per table with a difference: (rows only a holds, rows only b holds)."""
    ca, cb = content(a), content(b)
    return {name: (ca[name] - cb[name], cb[name] - ca[name]) for name in TABLES if ca[name] != cb[name]}


def compare_files(a: Path, b: Path) -> Differences:
    """differences() of two index files, each opened read-only."""
    first, second = store.open_readonly(a), store.open_readonly(b)
    try:
        return differences(first, second)
    finally:
        first.close()
        second.close()


def count(found: Differences) -> int:
    """How many rows differ, over every table."""
    return sum(sum(x.values()) + sum(y.values()) for x, y in found.values())


def describe(found: Differences, first: str, second: str, show: int = 3) -> list[str]:
    """A line per table that differs (how many rows only each side holds), then up to ``show``
    of those rows of each side."""
    lines = []
    for table, (only_first, only_second) in found.items():
        lines.append(
            f"{table}: {sum(only_first.values())} rows only in {first}, {sum(only_second.values())} only in {second}"
        )
        lines += [f"  {first}: {row}" for row in list(only_first)[:show]]
        lines += [f"  {second}: {row}" for row in list(only_second)[:show]]
    return lines
