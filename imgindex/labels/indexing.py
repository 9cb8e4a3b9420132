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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from .. import store
from ..walk import stored_text
from .files import StoredFile, remove_files, stored_files, write_file
from .formats import ClassTable, ImageIndex, LabelFormat, LabelPlan, Reading, get
from .formats.base import Stat
from .formats.model import IMAGE_WITHOUT_LABEL
from .formats.names import load_names
from .formats.registry import rank
from .formats.rows import Convention
from .settings import get_setting, set_setting

BATCH_FILES = 500  # label files written per savepoint (the split's label pass is one write transaction)


@dataclass
class LabelSummary:
    read: int = 0
    unchanged: int = 0
    removed: int = 0
    labels: int = 0  # rows of the scanned splits after the scan
    problems: int = 0
    formats: dict[str, str] = field(default_factory=dict)
    hints: list[str] = field(default_factory=list)  # splits without labels beside label-like files

    def line(self) -> str:
        return (
            f"labels: {self.read} files read, {self.unchanged} unchanged, {self.removed} removed; "
            f"{self.labels} labels, {self.problems} problems"
        ) + "".join(f"; {hint}" for hint in self.hints)


@dataclass(frozen=True)
class _SplitRead:
    """One split's label pass: its images, those new, changed or removed, and how files are read."""

    split: str
    scan_id: int
    images: ImageIndex
    touched: set[str]
    force: bool  # what the files are read with changed: every file is read
    convention: Convention | None
    retry_errors: bool = False  # files that failed are read again, even when unchanged


def index_labels(
    db: sqlite_utils.Database,
    split: str,
    plans: Sequence[LabelPlan],
    scan_id: int,
    convention: Convention | None,
    touched: set[str],
    retry_errors: bool = False,
) -> LabelSummary:
    """Bring the labels of one split up to date (with ``retry_errors``, label files that could not
    be read are read again even when unchanged, as images are). `touched` holds the split's image paths that were
    new, changed or removed in this scan; images written by scans whose label stage did not run
    (a killed scan) count as touched too.

    When no image of the split changed and every label file is as stored, nothing needs reading
    and the split's images are not even loaded: the label files are only stat-ed.

    One write transaction: what decides the files to read and the rows to replace is read under
    the write lock, so another writer indexing the same split meanwhile waits instead of having its
    rows inserted twice."""
    with store.write_transaction(db):
        return _index_split(db, split, plans, scan_id, convention, touched, retry_errors)


def _index_split(
    db: sqlite_utils.Database,
    split: str,
    plans: Sequence[LabelPlan],
    scan_id: int,
    convention: Convention | None,
    touched: set[str],
    retry_errors: bool = False,
) -> LabelSummary:
    summary = LabelSummary()
    if not plans and not _has_label_files(db, split):
        set_setting(db, f"labels.format.{split}", "")
        summary.formats[split] = ""
        return summary  # nothing labelled, before or now: no need to look at the images
    signature = _signature(plans, convention)
    force = get_setting(db, f"labels.read_with.{split}") != signature
    since = int(get_setting(db, f"labels.scan.{split}") or 0)
    retry = retry_errors and _has_failed_files(db, split)
    if not (force or touched or retry or _pending(db, split, since)):
        unchanged = _count_if_unchanged(db, split, plans)
        if unchanged is not None:
            summary.unchanged = unchanged
            return _finish(db, split, plans, signature, scan_id, summary)
    images, newer = _image_index(db, split, since)
    job = _SplitRead(split, scan_id, images, touched | newer, force, convention, retry)
    _read_split(db, plans, job, summary)
    return _finish(db, split, plans, signature, scan_id, summary)


def _read_split(db: sqlite_utils.Database, plans: Sequence[LabelPlan], job: _SplitRead, summary: LabelSummary) -> None:
    """Read what must be read, forget files gone from disk, refresh the split-wide rows."""
    stored = stored_files(db, job.split)
    seen: set[str] = set()
    for plan in plans:
        seen.update(_read_plan(db, plan, stored, job, summary, seen))
    summary.removed = remove_files(db, [stored[p].id for p in stored if p not in seen])
    if job.force or summary.read or summary.removed or job.touched:
        _assign_class_ids(db, job.split)
        _refresh_split(db, job.split, plans)


def _read_plan(
    db: sqlite_utils.Database,
    plan: LabelPlan,
    stored: dict[str, StoredFile],
    job: _SplitRead,
    summary: LabelSummary,
    done: set[str],
) -> set[str]:
    """(Re-)read the plan's files that are stale, but those another plan of the split has just
    handled (a names file two folders share); returns the paths of all its files on disk."""
    fmt = get(plan.format)
    on_disk = fmt.stat_with_images(plan, job.images)
    sources = {stored_text(p): p for p in on_disk if stored_text(p) not in done}  # not UTF-8: stored escaped
    current = {text: on_disk[p] for text, p in sources.items()}
    todo = _to_read(fmt, plan, current, stored, job)
    summary.unchanged += len(current) - len(todo)
    summary.read += len(todo)
    if not todo:
        return set(current)
    fmt.class_table.before_read(db, job.split)
    reading = Reading(job.images, load_names(plan.names_file) if plan.names_file else None, job.convention)
    for start in range(0, len(todo), BATCH_FILES):
        with store.write_transaction(db):
            for path in todo[start : start + BATCH_FILES]:
                parsed = fmt.read(plan, Path(sources[path]), reading)
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
    with store.write_transaction(db):  # one commit, not four
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
    with store.write_transaction(db):
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
        for on_disk, (size, mtime) in get(plan.format).stat_unchanged(plan, stored).items():
            path = stored_text(on_disk)
            known = stored.get(path)
            if known is None or known[1:] != (mtime, plan.format) or (size is not None and known[0] != size):
                return None
            seen.add(path)
    return len(seen) if seen == stored.keys() else None


def _has_failed_files(db: sqlite_utils.Database, split: str) -> bool:
    return (
        db.execute("SELECT 1 FROM label_files WHERE split = ? AND error IS NOT NULL LIMIT 1", [split]).fetchone()
        is not None
    )


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
    if job.retry_errors and known.error is not None:
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
    with store.write_transaction(db):
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
    with store.write_transaction(db):
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
