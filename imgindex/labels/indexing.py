"""Label indexing: keep label_files, labels, label_problems and classes of each scanned split current.

Runs after the images of a split are indexed (box conversion needs their sizes). A label file is
re-read when its (size, mtime_ns) changed, when the images it annotates appeared, changed or went
(as its format judges), or when what it is read with changed (format, class names, row
convention); unchanged ones are not opened. Label files gone from disk leave the index with their
rows. Only the scanned splits are touched. Every format-specific step is asked of the plan's
format (formats.base.LabelFormat).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from .formats import ClassTable, ImageIndex, LabelFormat, LabelPlan, Parsed, Problem, Reading, detect, get
from .formats.base import Stat
from .formats.model import IMAGE_WITHOUT_LABEL, UNREADABLE_FILE
from .formats.names import load_names
from .formats.registry import rank
from .formats.rows import Convention, parse_bbox_format, split_row

BATCH_FILES = 500  # label files written per transaction


# ---------------------------------------------------------------- settings


def get_setting(db: sqlite_utils.Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return None if row is None else row[0]


def set_setting(db: sqlite_utils.Database, key: str, value: str | None) -> None:
    """Store `value` under `key`; None deletes the key."""
    with db.atomic():
        if value is None:
            db.conn.execute("DELETE FROM settings WHERE key = ?", [key])
        else:
            db.conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )


# ---------------------------------------------------------------- setup


@dataclass(frozen=True)
class LabelOptions:
    """The scan command's label options; None means 'not given'."""

    labels: str | None = None  # --labels NAME (a registered format)
    coco: Path | None = None  # --coco FILE
    label_first: bool | None = None  # --label-first / --box-first
    bbox_format: str | None = None  # --bbox-format xyxy|xywh|cxcywh[-norm]


class MissingAnswers(Exception):
    """A custom label layout whose row convention is neither given nor stored."""

    def __init__(self, missing: list[str], sample: list[tuple[str, str]]) -> None:
        super().__init__(", ".join(missing))
        self.missing = missing  # 'label_first' and/or 'bbox_format'
        self.sample = sample  # (file, row) pairs to show


@dataclass(frozen=True)
class LabelSetup:
    """Everything a scan needs to index labels: a plan per scanned folder, the row convention."""

    plans: dict[str, list[LabelPlan]]
    convention: Convention | None


def prepare(db: sqlite_utils.Database, splits: dict[str, list[Path]], options: LabelOptions) -> LabelSetup:
    """Plans and convention for a scan; raises LabelError or MissingAnswers (nothing is stored then)."""
    plans = plan_labels(db, splits, options)
    return LabelSetup(plans, resolve_convention(db, plans, options))


# ---------------------------------------------------------------- plans


def plan_labels(
    db: sqlite_utils.Database, splits: dict[str, list[Path]], options: LabelOptions
) -> dict[str, list[LabelPlan]]:
    """The label plan of every scanned folder: options first, then the options stored by an earlier
    scan of the split (`--labels`, `--coco`), then detection. Raises LabelError for impossible options."""
    plans: dict[str, list[LabelPlan]] = {}
    for split, roots in splits.items():
        override = options.labels or get_setting(db, f"labels.option.{split}")
        coco = _label_file(db, split, override, options)
        plans[split] = [_plan(split, root, override, coco, options) for root in roots]
    return plans


def _label_file(db: sqlite_utils.Database, split: str, override: str | None, options: LabelOptions) -> Path | None:
    """The --coco file of the split (given or stored), unless --labels names a format taking none."""
    text = str(options.coco) if options.coco else get_setting(db, f"labels.coco.{split}")
    if not text or (override is not None and not get(override).takes_label_file):
        return None
    return Path(text)


def _plan(split: str, root: Path, override: str | None, coco: Path | None, options: LabelOptions) -> LabelPlan:
    """The folder's plan; a format the user did not name may give way to the row options."""
    plan = detect(split, root, override, coco)
    if override == plan.format:
        return plan
    return get(plan.format).under_row_options(plan, options.label_first, options.bbox_format)


def remember_options(db: sqlite_utils.Database, splits: Iterable[str], options: LabelOptions) -> None:
    """Store --labels and --coco per split so the next scan reads the split the same way."""
    for split in splits:
        if options.labels is not None:
            set_setting(db, f"labels.option.{split}", options.labels)
        if options.coco is not None:
            set_setting(db, f"labels.coco.{split}", str(options.coco.resolve()))


def keep_image(plans: Sequence[LabelPlan]) -> Callable[[str], bool] | None:
    """A filter for the image walk when a plan names its split's images (VOC ImageSets lists):
    an image is kept when any such plan takes it."""
    filters = [f for f in (get(p.format).image_filter(p) for p in plans) if f is not None]
    if not filters:
        return None
    return lambda path: any(keep(path) for keep in filters)


# ---------------------------------------------------------------- row convention


def resolve_convention(
    db: sqlite_utils.Database, plans: dict[str, list[LabelPlan]], options: LabelOptions
) -> Convention | None:
    """The row convention for formats that need one: options, else the stored answers; stores what
    it returns. None when no folder needs one. Raises MissingAnswers with a sample when unknown."""
    asking = [p for ps in plans.values() for p in ps if get(p.format).asks_row_convention]
    if not asking:
        return None
    label_first = options.label_first
    if label_first is None and get_setting(db, "labels.label_first") is not None:
        label_first = get_setting(db, "labels.label_first") == "true"
    bbox = options.bbox_format or get_setting(db, "labels.bbox_format")
    missing = (["label_first"] if label_first is None else []) + (["bbox_format"] if bbox is None else [])
    if missing:
        raise MissingAnswers(missing, sample_rows(asking))
    assert label_first is not None and bbox is not None
    store_answers(db, label_first, bbox)
    box_format, normalised = parse_bbox_format(bbox)
    return Convention(label_first, box_format, normalised)


def store_answers(db: sqlite_utils.Database, label_first: bool, bbox_format: str) -> None:
    set_setting(db, "labels.label_first", "true" if label_first else "false")
    set_setting(db, "labels.bbox_format", bbox_format)


def sample_rows(plans: Sequence[LabelPlan], limit: int = 6) -> list[tuple[str, str]]:
    """A few rows of the plans' label files, to show with the questions."""
    out: list[tuple[str, str]] = []
    for plan in plans:
        out += get(plan.format).sample_rows(plan, limit - len(out))
        if len(out) >= limit:
            break
    return out


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


# ---------------------------------------------------------------- indexing


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


@dataclass(frozen=True)
class _SplitRead:
    """One split's label pass: its images, those new, changed or removed, and how files are read."""

    split: str
    scan_id: int
    images: ImageIndex
    touched: set[str]
    force: bool  # what the files are read with changed: every file is read
    convention: Convention | None


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
    job = _SplitRead(split, scan_id, images, touched | newer, force, convention)
    _read_split(db, plans, job, summary)
    return _finish(db, split, plans, signature, scan_id, summary)


def _read_split(db: sqlite_utils.Database, plans: Sequence[LabelPlan], job: _SplitRead, summary: LabelSummary) -> None:
    """Read what must be read, forget files gone from disk, refresh the split-wide rows."""
    stored = stored_files(db, job.split)
    seen: set[str] = set()
    for plan in plans:
        seen.update(_read_plan(db, plan, stored, job, summary))
    summary.removed = remove_files(db, [stored[p].id for p in stored if p not in seen])
    if job.force or summary.read or summary.removed or job.touched:
        _assign_class_ids(db, job.split)
        _refresh_split(db, job.split, plans)


def _read_plan(
    db: sqlite_utils.Database, plan: LabelPlan, stored: dict[str, StoredFile], job: _SplitRead, summary: LabelSummary
) -> set[str]:
    """(Re-)read the plan's files that are stale; returns the paths of all its files on disk."""
    fmt = get(plan.format)
    current = fmt.stat_with_images(plan, job.images)
    todo = _to_read(fmt, plan, current, stored, job)
    summary.unchanged += len(current) - len(todo)
    summary.read += len(todo)
    if not todo:
        return set(current)
    fmt.class_table.before_read(db, job.split)
    reading = Reading(job.images, load_names(plan.names_file) if plan.names_file else None, job.convention)
    for start in range(0, len(todo), BATCH_FILES):
        with db.atomic():
            for path in todo[start : start + BATCH_FILES]:
                parsed = fmt.read(plan, Path(path), reading)
                write_file(db, job.split, plan, path, current[path], parsed, stored.get(path), job.scan_id)
    return set(current)


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
    read, none gone, none new); None otherwise. Only valid while no image of the split changed."""
    stored = {
        path: (size, mtime, fmt)
        for path, size, mtime, fmt in db.execute(
            "SELECT path, size, mtime_ns, format FROM label_files WHERE split = ?", [split]
        )
    }
    seen: set[str] = set()
    for plan in plans:
        for path, (size, mtime) in get(plan.format).stat_unchanged(plan, stored).items():
            known = stored.get(path)
            if known is None or known[1:] != (mtime, plan.format) or (size is not None and known[0] != size):
                return None
            seen.add(path)
    return len(seen) if seen == stored.keys() else None


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
                [str(c) for c in p.files],
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


def _to_read(
    fmt: LabelFormat, plan: LabelPlan, current: dict[str, Stat], stored: dict[str, StoredFile], job: _SplitRead
) -> list[str]:
    """The label files of `plan` that must be (re-)read: all of them when one must and the format
    reads its files together."""
    todo = [path for path, stat in current.items() if _stale(fmt, plan, path, stat, stored.get(path), job)]
    return list(current) if todo and fmt.reads_together else todo


def _stale(fmt: LabelFormat, plan: LabelPlan, path: str, stat: Stat, known: StoredFile | None, job: _SplitRead) -> bool:
    if job.force or known is None or (known.size, known.mtime_ns, known.format) != (*stat, plan.format):
        return True
    if known.images & job.touched or any(p not in job.images.sizes for p in known.images):
        return True  # an image it annotates changed or went
    return fmt.links_changed(plan, path, known.images, job.images, job.touched)


def _assign_class_ids(db: sqlite_utils.Database, split: str) -> None:
    """Labels that name a class without an id (VOC, class folders): one id per name across the
    whole index, kept once given; new names get the next ids in name order."""
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
    """Split-wide facts, recomputed on every scan that changed anything: the class tables of the
    split's formats, and images without a label file (unless no format of the split has labels)."""
    with db.atomic():
        db.conn.execute("DELETE FROM label_problems WHERE split = ? AND label_file_id IS NULL", [split])
        for table, members in _class_tables(plans):
            table.refresh(db, split, members)
        if plans and not any(get(p.format).expects_labels for p in plans):
            db.conn.execute("DELETE FROM classes WHERE split = ?", [split])
            return
        db.conn.execute(
            "INSERT INTO label_problems (split, path, kind, detail) SELECT i.split, i.path, ?, "
            "'no label file covers this image' FROM images i WHERE i.split = ? AND NOT EXISTS ("
            "SELECT 1 FROM label_file_images lfi CROSS JOIN label_files lf ON lf.id = lfi.label_file_id "
            "WHERE lfi.image_path = i.path AND lf.split = i.split)",
            [IMAGE_WITHOUT_LABEL, split],
        )


def _class_tables(plans: Sequence[LabelPlan]) -> list[tuple[ClassTable, list[LabelPlan]]]:
    """Each class table of the split's formats once, with the plans it keeps, in the detection
    order of their formats."""
    tables: dict[ClassTable, list[LabelPlan]] = {}
    for plan in plans:
        tables.setdefault(get(plan.format).class_table, []).append(plan)
    return sorted(tables.items(), key=lambda item: min(rank(get(p.format)) for p in item[1]))


def _totals(db: sqlite_utils.Database, split: str) -> tuple[int, int]:
    labels = db.execute("SELECT COUNT(*) FROM labels WHERE split = ?", [split]).fetchone()[0]
    problems = db.execute("SELECT COUNT(*) FROM label_problems WHERE split = ?", [split]).fetchone()[0]
    return int(labels), int(problems)


# ---------------------------------------------------------------- stored files

_PER_FILE = ("labels", "label_problems", "label_file_images")


@dataclass
class StoredFile:
    """A label_files row with the images the file was linked to when it was read."""

    id: int
    size: int | None
    mtime_ns: int | None
    format: str | None
    images: set[str]


def stored_files(db: sqlite_utils.Database, split: str) -> dict[str, StoredFile]:
    """path -> stored file, for every label file of the split."""
    out: dict[str, StoredFile] = {}
    for id_, path, size, mtime, fmt in db.execute(
        "SELECT id, path, size, mtime_ns, format FROM label_files WHERE split = ?", [split]
    ):
        out[path] = StoredFile(id_, size, mtime, fmt, set())
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
        [(lf_id, split, pr.path, pr.line, pr.kind, pr.detail) for pr in problems],
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
    with db.atomic():
        for lf_id in ids:
            for table in _PER_FILE:
                db.conn.execute(f"DELETE FROM {table} WHERE label_file_id = ?", [lf_id])
            db.conn.execute("DELETE FROM label_files WHERE id = ?", [lf_id])
    return len(ids)
