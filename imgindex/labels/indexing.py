"""Label indexing: keep label_files, labels, label_problems and classes of each scanned split current.

Runs after the images of a split are indexed (box conversion needs their sizes). A label file is
re-read when its (size, mtime_ns) changed, when the image it annotates appeared, changed or went,
or when what it is read with changed (format, class names, row convention); unchanged ones are not
opened. Label files gone from disk leave the index with their rows. Only the scanned splits are touched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from .formats.detect import LabelPlan, detect, in_split, label_files, text_file_stats
from .formats.model import IMAGE_WITHOUT_LABEL, UNNAMED_CLASS, UNREADABLE_FILE, Parsed, Problem
from .formats.names import load_names
from .formats.read import ImageIndex, image_for_text_label, read_label_file
from .formats.rows import YOLO, Convention, numeric_rows, parse_bbox_format, split_row

BATCH_FILES = 500  # label files written per transaction


@dataclass(frozen=True)
class LabelOptions:
    """The scan command's label options; None means 'not given'."""

    labels: str | None = None  # --labels yolo|coco|voc|folders|custom|none
    coco: Path | None = None  # --coco FILE
    label_first: bool | None = None  # --label-first / --box-first
    bbox_format: str | None = None  # --bbox-format xyxy|xywh|cxcywh[-norm]


class MissingAnswers(Exception):
    """A custom label layout whose row convention is neither given nor stored."""

    def __init__(self, missing: list[str], sample: list[tuple[str, str]]) -> None:
        super().__init__(", ".join(missing))
        self.missing = missing  # 'label_first' and/or 'bbox_format'
        self.sample = sample  # (file, row) pairs to show


@dataclass
class LabelSummary:
    read: int = 0
    unchanged: int = 0
    removed: int = 0
    labels: int = 0  # rows of the scanned splits after the scan
    problems: int = 0
    formats: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"labels: {self.read} files read, {self.unchanged} unchanged, {self.removed} removed; "
            f"{self.labels} labels, {self.problems} problems"
        )


# ---------------------------------------------------------------- settings


def get_setting(db: sqlite_utils.Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return None if row is None else row[0]


def set_setting(db: sqlite_utils.Database, key: str, value: str | None) -> None:
    with db.atomic():
        if value is None:
            db.conn.execute("DELETE FROM settings WHERE key = ?", [key])
        else:
            db.conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )


# ---------------------------------------------------------------- plans


def plan_labels(
    db: sqlite_utils.Database, splits: dict[str, list[Path]], options: LabelOptions
) -> dict[str, list[LabelPlan]]:
    """The label plan of every scanned folder: options first, then the options stored by an earlier
    scan of the split (`--labels`, `--coco`), then detection. Raises LabelError for impossible options."""
    plans: dict[str, list[LabelPlan]] = {}
    custom_flags = options.label_first is not None or options.bbox_format is not None
    for split, roots in splits.items():
        override = options.labels or get_setting(db, f"labels.option.{split}")
        coco_text = str(options.coco) if options.coco else get_setting(db, f"labels.coco.{split}")
        coco = Path(coco_text) if coco_text and override in (None, "coco") else None
        plans[split] = []
        for root in roots:
            plan = detect(split, root, override, coco)
            if plan.format == "yolo" and custom_flags and override != "yolo" and _flags_differ(options):
                plan = LabelPlan(**{**plan.__dict__, "format": "custom", "reason": plan.reason + " (row options)"})
            plans[split].append(plan)
    return plans


def _flags_differ(options: LabelOptions) -> bool:
    return (options.label_first is False) or (options.bbox_format not in (None, YOLO.bbox_format))


def remember_options(db: sqlite_utils.Database, splits: Iterable[str], options: LabelOptions) -> None:
    """Store --labels and --coco per split so the next scan reads the split the same way."""
    for split in splits:
        if options.labels is not None:
            set_setting(db, f"labels.option.{split}", options.labels)
        if options.coco is not None:
            set_setting(db, f"labels.coco.{split}", str(options.coco.resolve()))


def keep_image(plans: Sequence[LabelPlan]) -> Any:
    """A filter for the image walk: VOC ImageSets lists name the images of a split."""
    lists = [p for p in plans if p.members is not None]
    if not lists:
        return None
    return lambda path: any(in_split(p, path) for p in lists)


def resolve_convention(
    db: sqlite_utils.Database, plans: dict[str, list[LabelPlan]], options: LabelOptions
) -> Convention | None:
    """The row convention for custom label files: options, else the stored answers; stores what it
    returns. None when no folder is custom. Raises MissingAnswers with a sample when unknown."""
    custom = [p for ps in plans.values() for p in ps if p.format == "custom"]
    if not custom:
        return None
    label_first = options.label_first
    if label_first is None and get_setting(db, "labels.label_first") is not None:
        label_first = get_setting(db, "labels.label_first") == "true"
    bbox = options.bbox_format or get_setting(db, "labels.bbox_format")
    missing = (["label_first"] if label_first is None else []) + (["bbox_format"] if bbox is None else [])
    if missing:
        raise MissingAnswers(missing, sample_rows(custom))
    assert label_first is not None and bbox is not None
    store_answers(db, label_first, bbox)
    box_format, normalised = parse_bbox_format(bbox)
    return Convention(label_first, box_format, normalised)


def store_answers(db: sqlite_utils.Database, label_first: bool, bbox_format: str) -> None:
    set_setting(db, "labels.label_first", "true" if label_first else "false")
    set_setting(db, "labels.bbox_format", bbox_format)


def sample_rows(plans: Sequence[LabelPlan], limit: int = 6) -> list[tuple[str, str]]:
    """A few numeric rows of the custom label files, to show with the questions."""
    out: list[tuple[str, str]] = []
    for plan in plans:
        for path in label_files(plan):
            if plan.names_file is not None and path == plan.names_file:
                continue
            text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
            for row in numeric_rows(text, limit - len(out)):
                out.append((str(path), " ".join(f"{v:g}" for v in row)))
            if len(out) >= limit:
                return out
    return out


@dataclass(frozen=True)
class LabelSetup:
    """Everything a scan needs to index labels: a plan per scanned folder, the row convention."""

    plans: dict[str, list[LabelPlan]]
    convention: Convention | None


def prepare(db: sqlite_utils.Database, splits: dict[str, list[Path]], options: LabelOptions) -> LabelSetup:
    """Plans and convention for a scan; raises LabelError or MissingAnswers (nothing is stored then)."""
    plans = plan_labels(db, splits, options)
    return LabelSetup(plans, resolve_convention(db, plans, options))


# ---------------------------------------------------------------- indexing


@dataclass
class _Stored:
    id: int
    size: int | None
    mtime_ns: int | None
    format: str | None
    images: set[str]


def index_labels(
    db: sqlite_utils.Database,
    split: str,
    plans: Sequence[LabelPlan],
    scan_id: int,
    convention: Convention | None,
    touched: set[str],
) -> LabelSummary:
    """Bring the labels of one split up to date. `touched` holds the split's image paths that were
    new, changed or removed in this scan; images written by scans whose label stage did not run
    (a killed scan) count as touched too.

    When no image of the split changed and every label file is as stored, nothing needs reading
    and the split's images are not even loaded: the label files are only stat-ed."""
    summary = LabelSummary()
    if not plans and not _has_label_files(db, split):
        set_setting(db, f"labels.format.{split}", "")
        summary.formats[split] = ""
        return summary  # nothing labelled, before or now: no need to look at the images
    signature = _signature(plans, convention)
    force = get_setting(db, f"labels.read_with.{split}") != signature
    since = int(get_setting(db, f"labels.scan.{split}") or 0)
    if not (force or touched or _pending(db, split, since)):
        unchanged = _count_if_unchanged(db, split, plans)
        if unchanged is not None:
            summary.unchanged = unchanged
            return _finish(db, split, plans, signature, scan_id, summary)
    images, newer = _image_index(db, split, since)
    touched = touched | newer
    stored = _stored_files(db, split)
    seen: set[str] = set()
    for plan in plans:
        names = load_names(plan.names_file) if plan.names_file else None
        current = _stat_files(plan, images)
        todo = _to_read(plan, current, stored, images, touched, force)
        summary.unchanged += len(current) - len(todo)
        seen.update(current)
        if plan.format == "coco" and todo:
            db.execute("DELETE FROM classes WHERE split = ?", [split])
        for start in range(0, len(todo), BATCH_FILES):
            with db.atomic():
                for path in todo[start : start + BATCH_FILES]:
                    parsed = read_label_file(plan, Path(path), images, names, convention)
                    _write_file(db, split, plan, path, current[path], parsed, stored.get(path), scan_id)
        summary.read += len(todo)
    summary.removed = _remove_files(db, [stored[p].id for p in stored if p not in seen])
    if force or summary.read or summary.removed or touched:
        _assign_class_ids(db, split)
        _refresh_split(db, split, plans)
    return _finish(db, split, plans, signature, scan_id, summary)


def _finish(
    db: sqlite_utils.Database,
    split: str,
    plans: Sequence[LabelPlan],
    signature: str,
    scan_id: int,
    summary: LabelSummary,
) -> LabelSummary:
    """Record that the split's labels are current as of this scan; fill in the totals."""
    formats = ",".join(sorted({p.format for p in plans}))
    with db.atomic():  # one commit, not four
        set_setting(db, f"labels.read_with.{split}", signature)
        set_setting(db, f"labels.scan.{split}", str(scan_id))
        set_setting(db, f"labels.format.{split}", formats)
        set_setting(db, f"labels.pending.{split}", None)
    summary.labels, summary.problems = _totals(db, split)
    summary.formats[split] = formats
    return summary


def mark_pending(db: sqlite_utils.Database, splits: Iterable[str]) -> None:
    """Before a scan changes the images of these splits: their labels are due until the label
    stage has run (a scan killed in between leaves the mark for the next one)."""
    with db.atomic():
        for split in splits:
            set_setting(db, f"labels.pending.{split}", "1")


def _pending(db: sqlite_utils.Database, split: str, since: int) -> bool:
    """Did images of the split change without the label stage following (a killed scan)?"""
    if get_setting(db, f"labels.pending.{split}"):
        return True
    newer = db.execute("SELECT 1 FROM images WHERE split = ? AND scan_id > ? LIMIT 1", [split, since])
    return newer.fetchone() is not None


def _count_if_unchanged(db: sqlite_utils.Database, split: str, plans: Sequence[LabelPlan]) -> int | None:
    """How many label files the split has when every one is on disk exactly as stored (none to
    read, none gone, none new); None otherwise. Only valid while no image of the split changed:
    a class folder's image count is then the stored one."""
    stored = {
        path: (size, mtime, fmt)
        for path, size, mtime, fmt in db.execute(
            "SELECT path, size, mtime_ns, format FROM label_files WHERE split = ?", [split]
        )
    }
    seen: set[str] = set()
    for plan in plans:
        for path, (size, mtime) in _stat_unchanged_split(plan, stored).items():
            known = stored.get(path)
            if known is None or known[1:] != (mtime, plan.format) or (size is not None and known[0] != size):
                return None
            seen.add(path)
    return len(seen) if seen == stored.keys() else None


def _stat_unchanged_split(plan: LabelPlan, stored: dict[str, Any]) -> dict[str, tuple[Any, int]]:
    """_stat_files of a split none of whose images changed. Its class folders are then the stored
    ones (a folder that gained or lost its images changed images), so they are stat-ed, not listed."""
    if plan.format != "folders":
        return _stat_label_files(plan)
    found: dict[str, tuple[Any, int]] = {}
    root = str(plan.root)
    for path in stored:
        if os.path.dirname(path) == root:
            try:
                found[path] = (None, os.stat(path).st_mtime_ns)
            except OSError:
                continue  # gone: the stored row is then not seen, and the split is read in full
    return found


def _has_label_files(db: sqlite_utils.Database, split: str) -> bool:
    return db.execute("SELECT 1 FROM label_files WHERE split = ? LIMIT 1", [split]).fetchone() is not None


def _signature(plans: Sequence[LabelPlan], convention: Convention | None) -> str:
    """What the split's files are read with; a change re-reads them all."""
    return json.dumps(
        [
            [
                p.format,
                str(p.label_dir),
                str(p.image_dir),
                [str(c) for c in p.coco_files],
                str(p.names_file),
                _names_stamp(p.names_file),
            ]
            for p in plans
        ]
        + [convention.bbox_format if convention else None, convention.label_first if convention else None]
    )


def _names_stamp(path: Path | None) -> list[int] | None:
    try:
        st = path.stat() if path else None
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns] if st else None


def _image_index(db: sqlite_utils.Database, split: str, since: int) -> tuple[ImageIndex, set[str]]:
    """The split's images, and those written by scans after `since`."""
    rows = db.execute("SELECT path, width, height, error, scan_id FROM images WHERE split = ?", [split]).fetchall()
    sizes = {p: ((w, h) if w and h and not e else None) for p, w, h, e, _ in rows}
    return ImageIndex(sizes), {r[0] for r in rows if (r[4] or 0) > since}


def _stored_files(db: sqlite_utils.Database, split: str) -> dict[str, _Stored]:
    out: dict[str, _Stored] = {}
    for id_, path, size, mtime, fmt in db.execute(
        "SELECT id, path, size, mtime_ns, format FROM label_files WHERE split = ?", [split]
    ):
        out[path] = _Stored(id_, size, mtime, fmt, set())
    by_id = {s.id: s for s in out.values()}
    for lf_id, image in db.execute(
        "SELECT lfi.label_file_id, lfi.image_path FROM label_file_images lfi "
        "JOIN label_files lf ON lf.id = lfi.label_file_id WHERE lf.split = ?",
        [split],
    ):
        by_id[lf_id].images.add(image)
    return out


def _stat_files(plan: LabelPlan, images: ImageIndex) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of the plan's label files; a class folder's 'size' is its image count."""
    stats = _stat_label_files(plan)
    if plan.format == "folders":
        return {path: (len(images.under(path)), mtime) for path, (_, mtime) in stats.items()}
    return stats


def _stat_label_files(plan: LabelPlan) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of the plan's label files as the file system has them."""
    if plan.format in ("yolo", "custom"):
        assert plan.label_dir is not None
        return _with_stat(text_file_stats(plan.label_dir), plan.names_file)
    out: dict[str, tuple[int, int]] = {}
    for path in label_files(plan):
        try:
            st = os.stat(path)
        except OSError:
            continue
        out[str(path)] = (st.st_size, st.st_mtime_ns)
    return out


def _with_stat(files: dict[str, tuple[int, int]], extra: Path | None) -> dict[str, tuple[int, int]]:
    stamp = _names_stamp(extra)
    if extra is not None and stamp is not None:
        files[str(extra)] = (stamp[0], stamp[1])
    return files


def _to_read(
    plan: LabelPlan,
    current: dict[str, tuple[int, int]],
    stored: dict[str, _Stored],
    images: ImageIndex,
    touched: set[str],
    force: bool,
) -> list[str]:
    """The label files of `plan` that must be (re-)read."""
    todo = []
    for path, (size, mtime) in current.items():
        known = stored.get(path)
        if (
            force
            or known is None
            or (known.size, known.mtime_ns, known.format) != (size, mtime, plan.format)
            or _links_changed(plan, path, known, images, touched)
        ):
            todo.append(path)
    if plan.format == "coco" and todo:
        return list(current)  # categories come from all files of the split together
    return todo


def _links_changed(plan: LabelPlan, path: str, known: _Stored, images: ImageIndex, touched: set[str]) -> bool:
    """Did the images this file annotates appear, change or go since it was read?"""
    if known.images & touched or any(p not in images.sizes for p in known.images):
        return True
    if plan.format in ("yolo", "custom"):
        if plan.names_file is not None and path == str(plan.names_file):
            return False
        expected = image_for_text_label(plan, path, images)
        return {expected} - {None} != known.images
    if plan.format == "voc":
        return not known.images and images.by_stem(Path(path).stem) is not None
    if plan.format == "coco":
        return bool(touched)
    if plan.format == "folders":
        return any(t.startswith(path.rstrip(os.sep) + os.sep) for t in touched)
    return False


def _write_file(
    db: sqlite_utils.Database,
    split: str,
    plan: LabelPlan,
    path: str,
    stat: tuple[int, int],
    parsed: Parsed,
    known: _Stored | None,
    scan_id: int,
) -> None:
    """Replace everything stored for one label file by what was just read (inside a transaction)."""
    conn = db.conn
    values = [plan.format, stat[0], stat[1], parsed.error, scan_id]
    if known is None:
        cur = conn.execute(
            "INSERT INTO label_files (split, path, format, size, mtime_ns, error, scan_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [split, path, *values],
        )
        lf_id = int(cur.lastrowid or 0)
    else:
        lf_id = known.id
        conn.execute(
            "UPDATE label_files SET format = ?, size = ?, mtime_ns = ?, error = ?, scan_id = ? WHERE id = ?",
            [*values, lf_id],
        )
        for table in ("labels", "label_problems", "label_file_images"):
            conn.execute(f"DELETE FROM {table} WHERE label_file_id = ?", [lf_id])
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
        [(lf_id, split, pr.path, pr.line, pr.kind, pr.detail) for pr in problems],
    )
    if plan.format == "coco" and parsed.classes:
        conn.executemany(
            "INSERT INTO classes (split, class_id, name) VALUES (?, ?, ?) ON CONFLICT "
            "(split, class_id) DO UPDATE SET name = excluded.name",
            [(split, k, v) for k, v in parsed.classes.items()],
        )


def _box_values(box: Any) -> tuple[Any, ...]:
    if box is None:
        return (None,) * 9
    return (box.cx, box.cy, box.w, box.h, box.x1, box.y1, box.x2, box.y2, box.area)


def _remove_files(db: sqlite_utils.Database, ids: list[int]) -> int:
    with db.atomic():
        for lf_id in ids:
            for table in ("labels", "label_problems", "label_file_images"):
                db.conn.execute(f"DELETE FROM {table} WHERE label_file_id = ?", [lf_id])
            db.conn.execute("DELETE FROM label_files WHERE id = ?", [lf_id])
    return len(ids)


def _assign_class_ids(db: sqlite_utils.Database, split: str) -> None:
    """Formats that name classes without ids (VOC, class folders): one id per name across the whole
    index, kept once given; new names get the next ids in name order."""
    names = [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT class_name FROM labels WHERE split = ? AND "
            "class_id IS NULL AND class_name IS NOT NULL ORDER BY class_name",
            [split],
        )
    ]
    if not names:
        return
    known = dict(db.execute("SELECT name, MIN(class_id) FROM classes WHERE name IS NOT NULL GROUP BY name").fetchall())
    next_id = (db.execute("SELECT MAX(class_id) FROM classes").fetchone()[0] or -1) + 1
    with db.atomic():
        for name in names:
            if name not in known:
                known[name], next_id = next_id, next_id + 1
            db.conn.execute(
                "INSERT OR IGNORE INTO classes (split, class_id, name) VALUES (?, ?, ?)", [split, known[name], name]
            )
            db.conn.execute(
                "UPDATE labels SET class_id = ? WHERE split = ? AND class_id IS NULL AND class_name = ?",
                [known[name], split, name],
            )


def _refresh_split(db: sqlite_utils.Database, split: str, plans: Sequence[LabelPlan]) -> None:
    """Split-wide facts, recomputed on every scan: classes of named-list formats, images without a
    label file, and a missing class names file."""
    formats = {p.format for p in plans}
    with db.atomic():
        db.conn.execute("DELETE FROM label_problems WHERE split = ? AND label_file_id IS NULL", [split])
        if formats & {"yolo", "custom"}:
            _text_classes(db, split, plans)
        if formats & {"voc", "folders"}:
            db.conn.execute(
                "DELETE FROM classes WHERE split = ? AND class_id NOT IN "
                "(SELECT DISTINCT class_id FROM labels WHERE split = ? AND class_id IS NOT NULL)",
                [split, split],
            )
        if formats == {"none"}:
            db.conn.execute("DELETE FROM classes WHERE split = ?", [split])
            return
        db.conn.execute(
            "INSERT INTO label_problems (split, path, kind, detail) SELECT i.split, i.path, ?, "
            "'no label file covers this image' FROM images i WHERE i.split = ? AND NOT EXISTS ("
            "SELECT 1 FROM label_file_images lfi CROSS JOIN label_files lf ON lf.id = lfi.label_file_id "
            "WHERE lfi.image_path = i.path AND lf.split = i.split)",
            [IMAGE_WITHOUT_LABEL, split],
        )


def _text_classes(db: sqlite_utils.Database, split: str, plans: Sequence[LabelPlan]) -> None:
    names: dict[int, str] = {}
    for plan in plans:
        if plan.format not in ("yolo", "custom"):
            continue
        loaded = load_names(plan.names_file) if plan.names_file else None
        if loaded is None:
            db.conn.execute(
                "INSERT INTO label_problems (split, path, kind, detail) VALUES (?, ?, ?, ?)",
                [
                    split,
                    str(plan.label_dir),
                    UNNAMED_CLASS,
                    "no data.yaml, dataset.yaml or classes.txt with class names found beside the "
                    "split or above it: class names are empty",
                ],
            )
        names.update(loaded or {})
    db.conn.execute("DELETE FROM classes WHERE split = ?", [split])
    db.conn.executemany(
        "INSERT INTO classes (split, class_id, name) VALUES (?, ?, ?)",
        [(split, k, v) for k, v in sorted(names.items())],
    )


def _totals(db: sqlite_utils.Database, split: str) -> tuple[int, int]:
    labels = db.execute("SELECT COUNT(*) FROM labels WHERE split = ?", [split]).fetchone()[0]
    problems = db.execute("SELECT COUNT(*) FROM label_problems WHERE split = ?", [split]).fetchone()[0]
    return int(labels), int(problems)


def format_sample(sample: list[tuple[str, str]]) -> str:
    """Sample rows for the questions, one per line, under the file they come from."""
    lines: list[str] = []
    last = None
    for path, row in sample:
        if path != last:
            lines.append(f"{path}:")
            last = path
        lines.append("    " + " ".join(split_row(row)))
    return "\n".join(lines)
