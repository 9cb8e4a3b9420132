"""`imgindex scan`: walk the split folders, extract what changed, stream it into the database.

Only the difference is processed: stored ``(size, mtime_ns)`` are loaded once per split, files
whose pair is unchanged are not opened, new and changed ones are extracted in worker processes
and upserted in batches (one transaction per batch), and files gone from a split are removed.
Files that failed are read again only when they change or with ``retry_errors``. A killed scan
leaves every committed batch in place and the next scan picks up the rest.
"""

from __future__ import annotations

import gc
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlite_utils

from . import quality, store
from .executors import Executor, Inline, ProcessPool
from .labels import (
    LabelOptions,
    LabelSetup,
    LabelSummary,
    MissingAnswers,
    formats,
    index_labels,
    keep_image,
    mark_pending,
    prepare,
    remember_options,
    unread_label_hints,
)
from .near import verdict
from .walk import (
    FileEntry,
    Skips,
    Stamped,
    is_image_name,
    lies_within,
    raw_bytes,
    relative,
    stored_text,
    walk_stamped,
)

Splits = dict[str, list[Path]]
Members = Mapping[str, frozenset[str]]  # split -> the image paths a list names (imgindex.datasets)
Progress = Callable[[int, int], None]  # (files extracted so far, files to extract)


@dataclass(frozen=True)
class Job:
    split: str
    entry: FileEntry
    is_new: bool


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    unchanged: int = 0
    gone: dict[str, list[str]] = field(default_factory=dict)  # split -> paths no longer on disk
    retry_errors: bool = False  # read files that failed before even when unchanged
    walked: dict[Path, list[Stamped]] = field(default_factory=dict)  # folder -> its walk, once per scan
    skips: Skips = field(default_factory=Skips)  # links leading nowhere; names stored escaped
    digests: dict[str, str] = field(default_factory=dict)  # split -> its walk's digest, when compared file by file


@dataclass
class ScanSummary:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    errors: int = 0
    skipped: int = 0  # links in the split folders that lead nowhere (dangling, or a loop)
    seconds: float = 0.0
    scan_id: int = 0
    labels: LabelSummary | None = None
    skipped_links: list[str] = field(default_factory=list)  # those links, as stored text, sorted
    outside_links: list[str] = field(default_factory=list)  # links leading out of their split's folders
    unreadable_folders: list[str] = field(default_factory=list)  # folders that could not be listed
    unreadable_files: int = 0  # rows of the scanned splits with an error, this scan's and earlier ones

    def counts(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "errors": self.errors,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        skipped = f", {self.skipped} skipped" if self.skipped else ""  # links that lead nowhere
        earlier = self.unreadable_files - self.errors
        kept = (
            f"; {self.unreadable_files} unreadable files in these splits, {earlier} from earlier scans "
            "(--retry-errors reads them again)"
            if earlier > 0
            else ""
        )
        return (
            f"{self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.removed} removed, {self.errors} errors{skipped} in {self.seconds:.1f} s{kept}"
        ) + (f"; {self.labels.line()}" if self.labels else "")


def plan_split(
    db: sqlite_utils.Database,
    split: str,
    roots: Sequence[Path],
    plan: Plan,
    keep: Callable[[str], bool] | None = None,
) -> None:
    """Compare one split's files on disk with the index; add the work to ``plan``. ``keep``
    narrows the split to some of the files (a VOC ImageSets list).

    A split whose walk is the one the last scan recorded, over rows not written since, is unchanged
    as a whole (store.split_unchanged). Otherwise a file is unchanged when its (path, size,
    mtime_ns) is stored: one set lookup per file. Only when some file is not, or the counts differ,
    are the paths compared to find what went."""
    current = on_disk(roots, keep, plan.walked, plan.skips)
    digest = store.stamp_digest(current)
    if not plan.retry_errors and store.split_unchanged(db, split, digest):
        plan.unchanged += len(current)
        plan.gone[split] = []
        return
    plan.digests[split] = digest  # recorded when the scan has brought the split up to date
    stored = store.stored_stamps(db, split, plan.retry_errors)
    fresh = sorted(stamped for stamped in current if stamped not in stored)
    plan.unchanged += len(current) - len(fresh)
    if not fresh and len(current) == len(stored):
        plan.gone[split] = []  # the same files, all unchanged
        return
    stored_paths = {path for path, _, _ in stored}
    for path, size, mtime in fresh:
        entry = FileEntry(path, rel_path(path, roots), size, mtime, plan.skips.sources.get(path, ""))
        plan.jobs.append(Job(split, entry, is_new=path not in stored_paths))
    plan.gone[split] = sorted(kept_out(stored_paths - {path for path, _, _ in current}, plan.skips.unreadable))


def kept_out(gone: set[str], unreadable: Sequence[str]) -> set[str]:
    """The paths not found on disk, less those below a folder that could not be listed: they may
    still be there, so their rows stay until the folder can be read again."""
    if not unreadable:
        return gone
    below = tuple(folder.rstrip(os.sep) + os.sep for folder in unreadable)
    return {path for path in gone if not path.startswith(below)}


def on_disk(
    roots: Sequence[Path],
    keep: Callable[[str], bool] | None,
    walked: dict[Path, list[Stamped]],
    skips: Skips | None = None,
) -> list[Stamped]:
    """(path, size, mtime_ns) of a split's image files (overlapping folders counted once). ``walked``
    keeps each folder's walk for the other splits of the same scan that name it; ``skips`` gets
    what each walk skipped."""
    found = [f for root in roots for f in _walk(root, walked, skips) if keep is None or keep(f[0])]
    if len(roots) > 1:
        found = list(dict.fromkeys(found))
    return found


def _walk(root: Path, walked: dict[Path, list[Stamped]], skips: Skips | None) -> list[Stamped]:
    if root not in walked:
        walked[root] = walk_stamped(str(root), skips)
    return walked[root]


def links_outside(skips: Skips, splits: Splits) -> list[str]:
    """The links (image files or folders) in a split's folders whose target lies outside every
    folder of that split: indexed, but `imgindex serve` does not send their files."""
    targets = {link: os.path.realpath(skips.sources.get(link, link)) for link in skips.linked}
    out = set()
    for roots in splits.values():
        bases = tuple(stored_text(str(r)).rstrip(os.sep) + os.sep for r in roots)
        real = [os.path.realpath(r) for r in roots]
        out |= {link for link, target in targets.items() if link.startswith(bases) and not lies_within(target, real)}
    return sorted(out)


def rel_path(path: str, roots: Sequence[Path]) -> str:
    """The path relative to the first of the split's folders that holds it."""
    for root in roots:
        base = stored_text(str(root).rstrip(os.sep)) + os.sep
        if path.startswith(base):
            return relative(path, len(base))
    return os.path.basename(path)


def make_plan(
    db: sqlite_utils.Database,
    splits: Splits,
    setup: LabelSetup | None = None,
    retry_errors: bool = False,
    members: Members | None = None,
) -> Plan:
    """What a scan of ``splits`` has to do. ``members``: for a split listed image by image (a .txt
    list of a dataset file), the paths it holds; the rest of its folders is not part of it."""
    plan = Plan(retry_errors=retry_errors)
    with _collector_paused():  # a tuple per file, none of them cyclic: nothing to collect
        for split, roots in splits.items():
            keep = _both(keep_image(setup.plans[split]) if setup else None, (members or {}).get(split))
            plan_split(db, split, roots, plan, keep)
    return plan


def _both(keep: Callable[[str], bool] | None, listed: frozenset[str] | None) -> Callable[[str], bool] | None:
    if listed is None:
        return keep
    if keep is None:
        return listed.__contains__
    return lambda path: path in listed and keep(path)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold Python's cyclic garbage collector, which would otherwise traverse the growing sets of
    file stamps again and again while they are built."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def stat_entry(path: str, rel_path: str) -> FileEntry | None:
    """The FileEntry of an image file (``path`` as on disk) as it is now; None if it is gone, a
    folder or not named like an image. A FIFO or device gets an entry: extraction records why it
    is not read."""
    if not is_image_name(path):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return None
    text = stored_text(path)
    return FileEntry(text, stored_text(rel_path), st.st_size, st.st_mtime_ns, "" if text == path else path)


def plan_files(db: sqlite_utils.Database, split: str, files: Sequence[tuple[str, str]], plan: Plan) -> None:
    """Compare the given (path, rel_path) files of one split with the index; add the work to ``plan``.

    Unlike plan_split, only these files are looked at: the rest of the split is left alone.
    """
    stored = store.stored_subset(db, split, [stored_text(path) for path, _ in files])
    gone = plan.gone.setdefault(split, [])
    for path, rel_path in files:
        entry = stat_entry(path, rel_path)
        known = stored.get(stored_text(path))
        if entry is None:
            if known is not None:
                gone.append(stored_text(path))
        elif known is not None and known[:2] == (entry.size, entry.mtime_ns) and not known[2]:
            plan.unchanged += 1
        else:
            plan.jobs.append(Job(split, entry, is_new=known is None))


def update_files(
    db: sqlite_utils.Database,
    files: dict[str, list[tuple[str, str]]],
    scan_id: int,
    executor: Executor | None = None,
    also: Callable[[Plan], None] | None = None,
) -> ScanSummary:
    """Bring just these files (split -> [(path, rel_path)]) up to date, in ONE transaction.

    Files that are gone leave the index, new and changed ones are extracted (before the
    transaction); `also` runs inside it (e.g. the labels of the touched images) and so does the
    near-pairs refresh: readers see none or all of the change (e.g. both halves of a move).
    """
    started = time.monotonic()
    plan = Plan()
    for split, entries in files.items():
        plan_files(db, split, entries, plan)
    summary = ScanSummary(unchanged=plan.unchanged, scan_id=scan_id)
    rows: list[dict[str, Any]] = []
    for job, extracted in _extracted(plan.jobs, executor or Inline()):
        rows.append(to_row(job, extracted, scan_id))
        _count(summary, job, extracted)
    with store.write_transaction(db):
        store.upsert_images(db, rows)
        for split, gone in plan.gone.items():
            summary.removed += store.delete_images(db, split, gone)
        if also is not None:
            also(plan)
        verdict.refresh(db)
        quality.refresh(db)
    summary.seconds = time.monotonic() - started
    return summary


def _extracted(jobs: Sequence[Job], executor: Executor) -> Iterator[tuple[Job, dict[str, Any]]]:
    """(job, extracted row) as the executor finishes them; the executor's work is stopped when the
    caller stops early (an error, a Ctrl-C). A file in several splits (one folder named for two
    splits, or nested folders) is extracted once and yields a row for each of its jobs."""
    by_path: dict[str, list[Job]] = {}
    for job in jobs:
        by_path.setdefault(job.entry.on_disk, []).append(job)
    results = executor.run(list(by_path))
    try:
        for path, extracted in results:
            for job in by_path[path]:
                yield job, extracted
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()


def to_row(job: Job, extracted: dict[str, Any], scan_id: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "split": job.split,
        "path": job.entry.path,
        "rel_path": job.entry.rel_path,
        "size": job.entry.size,
        "mtime_ns": job.entry.mtime_ns,
        "path_bytes": raw_bytes(job.entry.on_disk),
        "scan_id": scan_id,
    }
    row.update(extracted)
    return row


def process(
    db: sqlite_utils.Database,
    jobs: Sequence[Job],
    scan_id: int,
    executor: Executor,
    batch_size: int,
    summary: ScanSummary,
    on_progress: Progress | None = None,
) -> None:
    """Extract every job and upsert the rows, one transaction per batch (or every 2 s); the upkeep
    of the hash indexes is put off to the end when many rows are new (store.deferred_upkeep)."""
    batch: list[dict[str, Any]] = []
    flushed = time.monotonic()
    with store.deferred_upkeep(db, sum(job.is_new for job in jobs)):
        for done, (job, extracted) in enumerate(_extracted(jobs, executor), start=1):
            batch.append(to_row(job, extracted, scan_id))
            _count(summary, job, extracted)
            if on_progress is not None:
                on_progress(done, len(jobs))
            if len(batch) >= batch_size or time.monotonic() - flushed > 2.0:
                store.upsert_images(db, batch)
                batch, flushed = [], time.monotonic()
        store.upsert_images(db, batch)


def _count(summary: ScanSummary, job: Job, extracted: dict[str, Any]) -> None:
    if job.is_new:
        summary.new += 1
    else:
        summary.changed += 1
    if extracted.get("error"):
        summary.errors += 1


def index_split_labels(db: sqlite_utils.Database, plan: Plan, setup: LabelSetup, scan_id: int) -> LabelSummary:
    """Index the labels of every scanned split after its images; totals over the splits."""
    total = LabelSummary()
    for split, plans in setup.plans.items():
        touched = {job.entry.path for job in plan.jobs if job.split == split} | set(plan.gone.get(split, []))
        one = index_labels(db, split, plans, scan_id, setup.convention, touched, plan.retry_errors)
        for name in ("read", "unchanged", "removed", "labels", "problems"):
            setattr(total, name, getattr(total, name) + getattr(one, name))
        total.formats.update(one.formats)
    return total


def scan(
    db: sqlite_utils.Database | str | Path,
    splits: Splits,
    *,
    labels: LabelOptions | None = None,
    ask: Callable[[MissingAnswers], LabelOptions] | None = None,
    label_setup: LabelSetup | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    batch_size: int = 256,
    retry_errors: bool = False,
    on_progress: Progress | None = None,
    named: Mapping[Path, Path] | None = None,
    quality_thresholds: Mapping[str, Any] | None = None,
    members: Members | None = None,
) -> ScanSummary:
    """Bring the index of ``splits`` (images, then labels) up to date; other splits in the database
    are untouched. ``db`` is an open index or a path (opened and closed here).

    Labels: ``labels`` (the scan command's options; the stored ones of each split otherwise) plan
    each folder, detecting its format; when custom rows have no known layout, ``ask`` answers the
    questions (else MissingAnswers is raised, before anything is written). The options given are
    remembered per split for the next scan. ``label_setup`` skips planning (the watcher's own).
    ``named`` maps a split folder to the path it was named by through a symlink (see
    labels.prepare). Extraction runs on ``executor`` (default: a local process pool of ``workers``).
    ``quality_thresholds`` are kept and applied to the quality flags (imgindex.quality.refresh).
    ``members`` narrows a split to the images a list names (imgindex.datasets: .txt lists)."""
    quality.parse_thresholds(quality_thresholds or {})  # refused before anything is written
    with _connection(db) as conn:
        options = labels or LabelOptions()
        setup = listed_members(label_setup or prepare(conn, splits, options, ask, named), members)
        summary = scan_images_and_labels(
            conn,
            splits,
            setup,
            executor or ProcessPool(workers),
            batch_size,
            retry_errors,
            on_progress,
            quality_thresholds,
            members,
        )
        remember_options(conn, splits, options)
    return summary


def listed_members(setup: LabelSetup, members: Members | None) -> LabelSetup:
    """The plans of splits listed image by image, told which images are theirs."""
    if not members:
        return setup
    plans = dict(setup.plans)
    for split, paths in members.items():
        stems = frozenset(os.path.splitext(os.path.basename(p))[0] for p in paths)
        plans[split] = [formats.get(p.format).with_members(p, stems) for p in plans.get(split, [])]
    return replace(setup, plans=plans)


@contextmanager
def _connection(db: sqlite_utils.Database | str | Path) -> Iterator[sqlite_utils.Database]:
    if isinstance(db, sqlite_utils.Database):
        yield db
        return
    conn = store.open_db(db)
    try:
        yield conn
    finally:
        conn.close()


def scan_images_and_labels(
    db: sqlite_utils.Database,
    splits: Splits,
    setup: LabelSetup,
    executor: Executor,
    batch_size: int = 256,
    retry_errors: bool = False,
    on_progress: Progress | None = None,
    quality_thresholds: Mapping[str, Any] | None = None,
    members: Members | None = None,
) -> ScanSummary:
    """The scan proper, on an open index: plan, extract in batches, remove, labels, near pairs,
    quality flags."""
    started = time.monotonic()
    arguments = {
        "splits": {k: [str(p) for p in v] for k, v in splits.items()},
        "executor": type(executor).__name__,
        "workers": getattr(executor, "workers", 1),
        "scheduler": getattr(executor, "scheduler", None),
        "labels": {k: [p.format for p in v] for k, v in setup.plans.items()},
    }
    summary = ScanSummary(scan_id=store.start_scan(db, arguments))
    plan = make_plan(db, splits, setup, retry_errors, members)
    summary.unchanged = plan.unchanged
    summary.skipped_links = sorted(set(plan.skips.links))
    summary.skipped = len(summary.skipped_links)
    summary.outside_links = links_outside(plan.skips, splits)
    summary.unreadable_folders = sorted(set(plan.skips.unreadable))
    mark_pending(db, {job.split for job in plan.jobs} | {split for split, gone in plan.gone.items() if gone})
    process(db, plan.jobs, summary.scan_id, executor, batch_size, summary, on_progress)
    for split, gone in plan.gone.items():
        summary.removed += store.delete_images(db, split, gone)
    for split, roots in splits.items():
        store.record_split(db, split, [stored_text(str(r)) for r in roots])
    store.record_split_stamps(db, plan.digests)
    summary.labels = index_split_labels(db, plan, setup, summary.scan_id)
    summary.labels.hints = unread_label_hints(setup.plans, splits)
    verdict.refresh(db)  # near_pairs of the new, changed and removed images, then the verdict
    quality.refresh(db, quality_thresholds)  # the flags of the splits whose images changed (all: new thresholds)
    summary.unreadable_files = store.error_rows(db, list(splits))
    summary.seconds = time.monotonic() - started
    store.finish_scan(db, summary.scan_id, summary.counts())
    return summary
