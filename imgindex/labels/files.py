"""The stored label files of a split (label_files rows) and what hangs off each: its labels,
problems and linked images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils

from .. import store
from ..walk import stored_text
from .formats import LabelPlan, Parsed, Problem
from .formats.base import Stat
from .formats.model import UNREADABLE_FILE

_PER_FILE = ("labels", "label_problems", "label_file_images")


@dataclass
class StoredFile:
    """A label_files row with the images the file was linked to when it was read."""

    id: int
    size: int | None
    mtime_ns: int | None
    format: str | None
    images: set[str]
    error: str | None = None


def stored_files(db: sqlite_utils.Database, split: str) -> dict[str, StoredFile]:
    """path -> stored file, for every label file of the split."""
    out: dict[str, StoredFile] = {}
    for id_, path, size, mtime, fmt, error in db.execute(
        "SELECT id, path, size, mtime_ns, format, error FROM label_files WHERE split = ?", [split]
    ):
        out[path] = StoredFile(id_, size, mtime, fmt, set(), error)
    by_id = {s.id: s for s in out.values()}
    for lf_id, image in db.execute(
        "SELECT lfi.label_file_id, lfi.image_path FROM label_file_images lfi "
        "JOIN label_files lf ON lf.id = lfi.label_file_id WHERE lf.split = ?",
        [split],
    ):
        by_id[lf_id].images.add(image)
    return out


def write_file(
    db: sqlite_utils.Database,
    split: str,
    plan: LabelPlan,
    path: str,
    stat: Stat,
    parsed: Parsed,
    known: StoredFile | None,
    scan_id: int,
) -> None:
    """Replace everything stored for one label file by what was just read (inside a transaction)."""
    store.mark_verdict_stale(db)
    lf_id = _file_row(db, (split, path), plan.format, (stat, parsed.error, scan_id), known)
    conn = db.conn
    conn.executemany(
        "INSERT OR IGNORE INTO label_file_images (label_file_id, image_path) VALUES (?, ?)",
        [(lf_id, p) for p in parsed.images],
    )
    conn.executemany(
        "INSERT INTO labels (label_file_id, split, image_path, class_id, class_name, cx, cy, w, h, "
        "x1, y1, x2, y2, area) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(lf_id, split, lb.image_path, lb.class_id, lb.class_name, *_box_values(lb.box)) for lb in parsed.labels],
    )
    problems = parsed.problems + ([Problem(UNREADABLE_FILE, path, None, parsed.error)] if parsed.error else [])
    conn.executemany(
        "INSERT INTO label_problems (label_file_id, split, path, line, kind, detail) VALUES (?, ?, ?, ?, ?, ?)",
        [(lf_id, split, pr.path and stored_text(pr.path), pr.line, pr.kind, pr.detail) for pr in problems],
    )
    if parsed.classes:  # classes the file defines (COCO categories)
        conn.executemany(
            "INSERT INTO classes (split, class_id, name) VALUES (?, ?, ?) ON CONFLICT "
            "(split, class_id) DO UPDATE SET name = excluded.name",
            [(split, k, v) for k, v in parsed.classes.items()],
        )


def _file_row(
    db: sqlite_utils.Database,
    where: tuple[str, str],
    fmt: str,
    state: tuple[Stat, str | None, int],
    known: StoredFile | None,
) -> int:
    """The id of the label_files row of (split, path), inserted or updated; an updated row loses its
    labels, problems and links."""
    (size, mtime), error, scan_id = state
    values = [fmt, size, mtime, error, scan_id]
    if known is None:
        cur = db.conn.execute(
            "INSERT INTO label_files (split, path, format, size, mtime_ns, error, scan_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [*where, *values],
        )
        return int(cur.lastrowid or 0)
    db.conn.execute(
        "UPDATE label_files SET format = ?, size = ?, mtime_ns = ?, error = ?, scan_id = ? WHERE id = ?",
        [*values, known.id],
    )
    for table in _PER_FILE:
        db.conn.execute(f"DELETE FROM {table} WHERE label_file_id = ?", [known.id])
    return known.id


def _box_values(box: Any) -> tuple[Any, ...]:
    if box is None:
        return (None,) * 9
    return (box.cx, box.cy, box.w, box.h, box.x1, box.y1, box.x2, box.y2, box.area)


def remove_files(db: sqlite_utils.Database, ids: list[int]) -> int:
    """Forget label files gone from disk, with their rows; returns how many."""
    with store.write_transaction(db):
        if ids:
            store.mark_verdict_stale(db)
        for lf_id in ids:
            for table in _PER_FILE:
                db.conn.execute(f"DELETE FROM {table} WHERE label_file_id = ?", [lf_id])
            db.conn.execute("DELETE FROM label_files WHERE id = ?", [lf_id])
    return len(ids)
