"""Read-only queries the report needs. Nothing here opens an image file."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

VALIDATION_NAMES = ("val", "valid", "validation")
_SPLIT_ORDER = {"train": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (name,)
    ).fetchone()
    return row is not None


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info([{table}])")}


def split_sort_key(name: str) -> tuple[int, str]:
    return (_SPLIT_ORDER.get(name.lower(), 3), name)


def order_splits(names: set[str] | list[str]) -> list[str]:
    """train first, then validation, test, then the rest alphabetically."""
    return sorted(set(names), key=split_sort_key)


def split_roots(conn: sqlite3.Connection) -> dict[str, list[str]]:
    roots: dict[str, list[str]] = {}
    if table_exists(conn, "splits"):
        for name, root in conn.execute("SELECT name, root FROM splits ORDER BY name, root"):
            roots.setdefault(name, []).append(root)
    return roots


def all_splits(conn: sqlite3.Connection) -> list[str]:
    """Every split the database knows: scanned folders, even empty ones, and splits with images."""
    names = set(split_roots(conn))
    names.update(r[0] for r in conn.execute("SELECT DISTINCT split FROM images"))
    if table_exists(conn, "labels"):
        names.update(r[0] for r in conn.execute("SELECT DISTINCT split FROM labels"))
    return order_splits(names)


def settings(conn: sqlite3.Connection) -> dict[str, str]:
    if not table_exists(conn, "settings") or not {"key", "value"} <= columns(conn, "settings"):
        return {}
    return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM settings ORDER BY key")}


def label_formats(conn: sqlite3.Connection, stored: dict[str, str]) -> dict[str, str]:
    """Label format per split: the stored setting when present, else what the label files say."""
    formats: dict[str, str] = {}
    if table_exists(conn, "label_files"):
        query = "SELECT split, group_concat(DISTINCT format) FROM label_files GROUP BY split"
        for split, fmt in conn.execute(query):
            if fmt:
                formats[split] = ",".join(sorted(fmt.split(",")))
    prefix = "labels.format."
    for key, value in stored.items():
        if key.startswith(prefix) and value:
            formats[key[len(prefix):]] = value
    return formats


@dataclass
class ImageTable:
    """Readable images as column arrays (rows with an error are counted, not included)."""

    split: np.ndarray  # str objects
    width: np.ndarray
    height: np.ndarray
    brightness: np.ndarray
    size: np.ndarray
    format: np.ndarray
    mean_rgb: np.ndarray  # (n, 3)
    counts: dict[str, int] = field(default_factory=dict)  # all rows per split
    errors: dict[str, int] = field(default_factory=dict)  # unreadable rows per split

    def mask(self, split: str) -> np.ndarray:
        return self.split == split


def load_images(conn: sqlite3.Connection) -> ImageTable:
    counts: dict[str, int] = {}
    errors: dict[str, int] = {}
    for split, n, bad in conn.execute(
        "SELECT split, count(*), count(error) FROM images GROUP BY split"
    ):
        counts[split], errors[split] = n, bad
    rows = conn.execute(
        "SELECT split, width, height, brightness, size, format, mean_r, mean_g, mean_b "
        "FROM images WHERE error IS NULL AND width IS NOT NULL"
    ).fetchall()
    if rows:
        cols = list(zip(*rows))
    else:
        cols = [()] * 9
    return ImageTable(
        split=np.array(cols[0], dtype=object),
        width=np.array(cols[1], dtype=np.float64),
        height=np.array(cols[2], dtype=np.float64),
        brightness=np.array([np.nan if v is None else v for v in cols[3]], dtype=np.float64),
        size=np.array(cols[4], dtype=np.float64),
        format=np.array(cols[5], dtype=object),
        mean_rgb=np.array(
            [[np.nan if v is None else v for v in c] for c in zip(*cols[6:9])], dtype=np.float64
        ).reshape(-1, 3),
        counts=counts,
        errors=errors,
    )


def load_histograms(conn: sqlite3.Connection) -> dict[str, np.ndarray]:
    """Mean per-image colour histogram per split: array (3, bins) of fractions."""
    sums: dict[str, np.ndarray] = {}
    numbers: dict[str, int] = {}
    query = "SELECT split, histogram FROM images WHERE error IS NULL AND histogram IS NOT NULL"
    for split, text in conn.execute(query):
        hist = json.loads(text)
        arr = np.array([hist["r"], hist["g"], hist["b"]], dtype=np.float64)
        if split in sums and sums[split].shape == arr.shape:
            sums[split] += arr
        else:
            sums.setdefault(split, arr)
        numbers[split] = numbers.get(split, 0) + 1
    return {split: sums[split] / numbers[split] for split in sums}


@dataclass
class LabelTable:
    """Label rows joined to their image: one row per box or per classification label."""

    split: np.ndarray  # str objects
    image: np.ndarray  # int key of the image (negative: label without an indexed image)
    cls: np.ndarray  # int index into class_names
    box: np.ndarray  # (n, 4) normalised cx, cy, w, h; NaN for classification rows
    area: np.ndarray  # fraction of the image
    image_size: np.ndarray  # (w + h) / 2 of the labelled image in pixels, NaN if unknown
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.split)


def _class_names(conn: sqlite3.Connection) -> dict[int, str]:
    names: dict[int, str] = {}
    if table_exists(conn, "classes"):
        for class_id, name in conn.execute(
            "SELECT class_id, name FROM classes WHERE name IS NOT NULL ORDER BY split DESC"
        ):
            names[int(class_id)] = str(name)
    return names


def load_labels(conn: sqlite3.Connection) -> LabelTable | None:
    if not table_exists(conn, "labels"):
        return None
    rows = conn.execute(
        "SELECT l.split, coalesce(i.id, -l.label_file_id, -1), l.class_id, l.class_name,"
        " l.cx, l.cy, l.w, l.h, l.area, (i.width + i.height) / 2.0"
        " FROM labels l LEFT JOIN images i ON i.split = l.split AND i.path = l.image_path"
        " WHERE l.class_id IS NOT NULL OR l.class_name IS NOT NULL"
    ).fetchall()
    known = _class_names(conn)
    cache: dict[tuple[Any, Any], str] = {}
    names = [
        cache.get((r[2], r[3])) or cache.setdefault((r[2], r[3]), _display_name(r[2], r[3], known))
        for r in rows
    ]
    order = _class_order(rows, names)
    index = {name: n for n, name in enumerate(order)}
    cls = np.array([index[name] for name in names], dtype=np.int64)
    cols = list(zip(*rows)) if rows else [()] * 10
    return LabelTable(
        split=np.array(cols[0], dtype=object),
        image=np.array(cols[1], dtype=np.int64),
        cls=cls,
        box=_floats(cols[4:8]).reshape(-1, 4) if rows else np.empty((0, 4)),
        area=_floats([cols[8]]).ravel(),
        image_size=_floats([cols[9]]).ravel(),
        class_names=order,
    )


def _display_name(class_id: Any, class_name: Any, known: dict[int, str]) -> str:
    if class_name not in (None, ""):
        return str(class_name)
    if class_id is not None and int(class_id) in known:
        return known[int(class_id)]
    return str(class_id)


def _class_order(rows: list[tuple[Any, ...]], names: list[str]) -> list[str]:
    """Class names ordered by their smallest class id, then by name."""
    first: dict[str, float] = {}
    for row, name in zip(rows, names):
        cid = float(row[2]) if isinstance(row[2], (int, float)) else float("inf")
        first[name] = min(first.get(name, float("inf")), cid)
    return sorted(first, key=lambda name: (first[name], name))


def _floats(cols: Any) -> np.ndarray:
    return np.array(
        [[np.nan if v is None else float(v) for v in col] for col in cols], dtype=np.float64
    ).T


def label_problem_counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    if not table_exists(conn, "label_problems"):
        return {}
    out: dict[str, dict[str, int]] = {}
    query = "SELECT split, kind, count(*) FROM label_problems GROUP BY split, kind ORDER BY split, kind"
    for split, kind, n in conn.execute(query):
        out.setdefault(str(split), {})[str(kind)] = n
    return out


def class_catalogue(conn: sqlite3.Connection) -> dict[str, int]:
    """Number of named classes per split (from the classes table)."""
    if not table_exists(conn, "classes"):
        return {}
    return {s: n for s, n in conn.execute("SELECT split, count(*) FROM classes GROUP BY split")}
