"""Read-only queries the report needs. Nothing here opens an image file."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..quality.flags import COLUMNS as QUALITY_COLUMNS
from ..quality.flags import Measures

VALIDATION_NAMES = ("val", "valid", "validation")
_SPLIT_ORDER = {"train": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (name,)).fetchone()
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
            formats[key[len(prefix) :]] = value
    return formats


MISSING = -1.0e300  # stands for NULL in numeric fetches; turned into NaN


def _numeric(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...], width: int) -> np.ndarray:
    """Rows of numbers (NULL given as MISSING by the query) as a float array with NaN for NULL."""
    rows = conn.execute(sql, params).fetchall()
    arr = np.array(rows, dtype=np.float64).reshape(-1, width)
    arr[arr == MISSING] = np.nan
    return arr


def _split_code(column: str, splits: list[str]) -> str:
    """SQL giving the position of the row's split in `splits` (one table scan serves all splits)."""
    whens = " ".join(f"WHEN {_sql(name)} THEN {n}" for n, name in enumerate(splits))
    return f"CASE {column} {whens} ELSE -1 END" if whens else "-1"


def _per_split(conn: sqlite3.Connection, splits: list[str], sql: str, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Run a numeric query whose first column is the split code; returns (split name per row, other columns)."""
    rows = _numeric(conn, sql, (), width + 1)
    codes = rows[:, 0].astype(np.int64)
    rows = rows[codes >= 0]
    names = np.array(splits, dtype=str) if splits else np.empty(0, dtype=str)
    return names[codes[codes >= 0]], rows[:, 1:]


@dataclass
class ImageTable:
    """Readable images as column arrays (rows with an error are counted, not included)."""

    split: np.ndarray  # split name per row
    width: np.ndarray
    height: np.ndarray
    brightness: np.ndarray
    mean_rgb: np.ndarray  # (n, 3)
    counts: dict[str, int] = field(default_factory=dict)  # all rows per split
    errors: dict[str, int] = field(default_factory=dict)  # unreadable rows per split
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # images.id per row

    def mask(self, split: str) -> np.ndarray:
        return self.split == split

    def aspect(self, image_ids: np.ndarray) -> float | None:
        """Median height / width of these images (those that could be read); None when none could."""
        keep = np.isin(self.ids, image_ids) & (self.width > 0)
        return float(np.median(self.height[keep] / self.width[keep])) if keep.any() else None


def load_images(conn: sqlite3.Connection, splits: list[str]) -> ImageTable:
    counts: dict[str, int] = {}
    errors: dict[str, int] = {}
    for split, n, bad in conn.execute("SELECT split, count(*), count(error) FROM images GROUP BY split"):
        counts[split], errors[split] = n, bad
    names, rows = _per_split(
        conn,
        splits,
        f"SELECT {_split_code('split', splits)}, width, height, ifnull(brightness, {MISSING}), ifnull(mean_r, {MISSING}),"
        f" ifnull(mean_g, {MISSING}), ifnull(mean_b, {MISSING}), id FROM images WHERE error IS NULL AND width IS NOT NULL",
        7,
    )
    ids = rows[:, 6].astype(np.int64)
    return ImageTable(names, rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3:6], counts, errors, ids)


def image_files(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Per split: bytes on disk and images per format (readable images)."""
    out: dict[str, dict[str, Any]] = {}
    query = "SELECT split, format, count(*), sum(size) FROM images WHERE error IS NULL GROUP BY split, format"
    for split, fmt, n, size in conn.execute(query):
        entry = out.setdefault(split, {"bytes": 0, "formats": {}})
        entry["bytes"] += size or 0
        entry["formats"][str(fmt)] = n
    return out


_HIST_CHARS = str.maketrans({ch: " " for ch in '{}[]":rgb'})


def load_histograms(conn: sqlite3.Connection, splits: list[str]) -> dict[str, np.ndarray]:
    """Mean per-image colour histogram per split: array (3, bins) of fractions."""
    where = "FROM images WHERE split = ? AND error IS NULL AND histogram IS NOT NULL"
    out: dict[str, np.ndarray] = {}
    for split in splits:
        n, joined = conn.execute(f"SELECT count(*), group_concat(histogram, ',') {where}", (split,)).fetchone()
        if n:
            out[split] = _mean_histogram(conn, f"SELECT histogram {where}", split, n, joined)
    return out


def _mean_histogram(conn: sqlite3.Connection, query: str, split: str, n: int, joined: str) -> np.ndarray:
    """Parse all histograms of a split at once when they share one layout; one by one otherwise."""
    first = json.loads(conn.execute(query + " LIMIT 1", (split,)).fetchone()[0])
    bins = len(first.get("r", []))
    if list(first) == ["r", "g", "b"] and bins and all(len(first[c]) == bins for c in "rgb"):
        flat = np.fromstring(joined.translate(_HIST_CHARS), dtype=np.float64, sep=",")
        if flat.size == 3 * bins * n:
            return flat.reshape(n, 3, bins).mean(axis=0)
    arrays = [
        np.array([h["r"], h["g"], h["b"]], dtype=np.float64)
        for (t,) in conn.execute(query, (split,))
        for h in [json.loads(t)]
    ]
    return np.mean([a for a in arrays if a.shape == arrays[0].shape], axis=0)


@dataclass
class LabelTable:
    """Label rows: one row per box or per classification label."""

    split: np.ndarray  # split name per row
    image: np.ndarray  # id of the labelled image (always an indexed image of the split)
    cls: np.ndarray  # int index into class_names
    box: np.ndarray  # (n, 4) normalised cx, cy, w, h; NaN for classification rows
    area: np.ndarray  # fraction of the image
    image_size: np.ndarray  # (w + h) / 2 of the labelled image in pixels, NaN if unknown
    class_names: list[str]  # the dataset's classes (classes table), then the other classes its labels use
    class_ids: list[int | None] = field(default_factory=list)  # the id of each name, None when it has none

    def __len__(self) -> int:
        return len(self.split)


def _class_names(conn: sqlite3.Connection) -> dict[int, str]:
    names: dict[int, str] = {}
    if table_exists(conn, "classes"):
        for class_id, name in conn.execute(
            "SELECT class_id, name FROM classes WHERE name IS NOT NULL AND class_id IS NOT NULL ORDER BY split DESC"
        ):
            names[int(class_id)] = str(name)
    return names


@dataclass
class ClassCodes:
    """The report's classes: display names ordered by class id, their ids, and the index of each
    (class_id, class_name) pair of the labels into them."""

    names: list[str]
    ids: list[int | None]
    codes: dict[tuple[Any, Any], int]


def _class_codes(conn: sqlite3.Connection) -> ClassCodes:
    """Every class of the `classes` table (the dataset's names file, COCO categories), used or not,
    and every class the labels use."""
    known = _class_names(conn)
    pairs = conn.execute(
        "SELECT DISTINCT class_id, class_name FROM labels WHERE class_id IS NOT NULL OR class_name IS NOT NULL"
    ).fetchall()
    pairs += [(class_id, None) for class_id in known]
    display = {pair: _display_name(pair[0], pair[1], known) for pair in pairs}
    first: dict[str, float] = {}
    for (cid, _), name in display.items():
        key = float(cid) if isinstance(cid, (int, float)) else float("inf")
        first[name] = min(first.get(name, float("inf")), key)
    order = sorted(first, key=lambda name: (first[name], name))
    index = {name: n for n, name in enumerate(order)}
    ids = [int(first[name]) if first[name] != float("inf") else None for name in order]
    return ClassCodes(order, ids, {pair: index[name] for pair, name in display.items()})


BOX_STEPS = 32767  # boxes are read quantised to 1/32767 of the image side: four 15-bit fields per row


def _quantised(column: str) -> str:
    return f"CAST(round(max(0.0, min(1.0, l.{column})) * {BOX_STEPS}) AS INTEGER)"


def load_labels(conn: sqlite3.Connection, splits: list[str]) -> LabelTable | None:
    """Boxes and classification labels of the indexed images. A label whose image is not in its
    split (a label file without an image) counts in no statistic: it is a label problem. Boxes
    travel packed in one integer: reading 4 floats per box through sqlite3 costs more than the
    whole analysis of them."""
    if not table_exists(conn, "labels"):
        return None
    classes = _class_codes(conn)
    by_id = _codes_by_id(classes.codes)
    cls_sql = "l.class_id" if by_id is not None else _case(classes.codes)
    common = (
        f"SELECT {_split_code('l.split', splits)}, i.id, ifnull({cls_sql}, -1), {{value}}"
        " FROM labels l JOIN images i ON i.split = l.split AND i.path = l.image_path"
        " WHERE (l.class_id IS NOT NULL OR l.class_name IS NOT NULL) AND {where}"
    )
    packed = " | ".join(f"({_quantised(c)} << {15 * n})" for n, c in enumerate(("cx", "cy", "w", "h")))
    box_rows = _integers(conn, common.format(value=packed, where="l.w IS NOT NULL AND l.h IS NOT NULL"), 4)
    size_sql = f"ifnull((i.width + i.height) / 2.0, {MISSING})"
    cls_rows = _numeric(conn, common.format(value=size_sql, where="(l.w IS NULL OR l.h IS NULL)"), (), 4)
    n_box, n_cls = len(box_rows), len(cls_rows)
    box = np.full((n_box + n_cls, 4), np.nan)
    box[:n_box] = _unpack(box_rows[:, 3])
    head = np.concatenate([box_rows[:, :3], cls_rows[:, :3].astype(np.int64)])
    keep = head[:, 0] >= 0
    cls = _class_index(head[:, 2], by_id)
    return LabelTable(
        split=(np.array(splits, dtype=str) if splits else np.empty(0, dtype=str))[head[keep, 0]],
        image=head[keep, 1],
        cls=cls[keep],
        box=box[keep],
        area=(box[:, 2] * box[:, 3])[keep],
        image_size=np.concatenate([np.full(n_box, np.nan), cls_rows[:, 3]])[keep],
        class_names=classes.names,
        class_ids=classes.ids,
    )


def _integers(conn: sqlite3.Connection, sql: str, width: int) -> np.ndarray:
    return np.array(conn.execute(sql).fetchall(), dtype=np.int64).reshape(-1, width)


def _unpack(packed: np.ndarray) -> np.ndarray:
    """(n,) packed integers -> (n, 4) normalised cx, cy, w, h."""
    fields = [(packed >> (15 * n)) & BOX_STEPS for n in range(4)]
    return np.stack(fields, axis=1) / BOX_STEPS


def _class_index(values: np.ndarray, by_id: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Class ids (or codes already) -> index into the display names."""
    if by_id is None or not len(values):
        return values
    ids, codes = by_id
    return codes[np.clip(np.searchsorted(ids, values), 0, len(ids) - 1)]


def _codes_by_id(codes: dict[tuple[Any, Any], int]) -> tuple[np.ndarray, np.ndarray] | None:
    """(sorted class ids, their codes) when the class id alone decides the code; None otherwise."""
    by_id: dict[int, int] = {}
    for (cid, _), code in codes.items():
        if not isinstance(cid, int) or by_id.setdefault(cid, code) != code:
            return None
    ids = np.array(sorted(by_id), dtype=np.int64)
    return ids, np.array([by_id[i] for i in ids.tolist()], dtype=np.int64)


def _case(codes: dict[tuple[Any, Any], int]) -> str:
    """A CASE giving each (class_id, class_name) pair its code, for labels whose names vary per id."""
    whens = " ".join(
        f"WHEN l.class_id IS {_sql(cid)} AND l.class_name IS {_sql(cname)} THEN {code}"
        for (cid, cname), code in codes.items()
    )
    return f"CASE {whens} ELSE -1 END" if whens else "-1"


def _sql(value: Any) -> str:
    """A literal for the CASE above (class ids are numbers, names are strings)."""
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _display_name(class_id: Any, class_name: Any, known: dict[int, str]) -> str:
    if class_name not in (None, ""):
        return str(class_name)
    if isinstance(class_id, (int, float)) and int(class_id) in known:
        return known[int(class_id)]
    return str(class_id)


@dataclass(frozen=True)
class LabelProblem:
    """A row of label_problems."""

    split: str
    kind: str
    path: str  # the label file, or the image for image_without_label
    line: int | None  # 1-based line or annotation index; None for a whole file
    detail: str


def label_problems(conn: sqlite3.Connection) -> list[LabelProblem]:
    if not table_exists(conn, "label_problems"):
        return []
    query = (
        "SELECT ifnull(split, ''), ifnull(kind, ''), ifnull(path, ''), line, ifnull(detail, '')"
        " FROM label_problems ORDER BY split, kind, path, line, id"
    )
    return [LabelProblem(str(s), str(k), str(p), line, str(d)) for s, k, p, line, d in conn.execute(query)]


def label_problem_counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    if not table_exists(conn, "label_problems"):
        return {}
    out: dict[str, dict[str, int]] = {}
    query = "SELECT split, kind, count(*) FROM label_problems GROUP BY split, kind ORDER BY split, kind"
    for split, kind, n in conn.execute(query):
        out.setdefault(str(split), {})[str(kind)] = n
    return out


def quality_measures(conn: sqlite3.Connection, split: str) -> Measures:
    """The stored quality measures of a split's images, as imgindex.quality judged them (its
    readable images that carry the measures)."""
    columns = ", ".join(QUALITY_COLUMNS)
    rows = conn.execute(
        f"SELECT id, {columns} FROM images WHERE split = ? AND error IS NULL AND entropy IS NOT NULL ORDER BY id",
        (split,),
    ).fetchall()
    return Measures.from_rows(rows)


@dataclass
class FlaggedImage:
    """An image carrying a quality flag: what the report needs to name it and find its file."""

    id: int
    split: str
    path: str
    rel_path: str
    path_bytes: bytes | None
    size: int
    mtime_ns: int
    value: float | None  # the value the flag was judged on

    def row(self) -> dict[str, Any]:
        """As an images row (imgindex.serve.files reads these keys)."""
        return {k: getattr(self, k) for k in ("id", "path", "path_bytes", "size", "mtime_ns")}


def quality_flagged(conn: sqlite3.Connection) -> dict[str, list[FlaggedImage]]:
    """Flag -> the images carrying it (stored in quality_flags), by split and path."""
    out: dict[str, list[FlaggedImage]] = {}
    query = (
        "SELECT f.flag, i.id, i.split, i.path, i.rel_path, i.path_bytes, i.size, i.mtime_ns, f.value "
        "FROM quality_flags f JOIN images i ON i.id = f.image_id ORDER BY f.flag, i.split, i.path"
    )
    for flag, *fields in conn.execute(query):
        out.setdefault(str(flag), []).append(FlaggedImage(*fields))
    return out
