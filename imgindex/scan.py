"""`imgindex scan`: walk the split folders, extract what changed, stream it into the database.

Only the difference is processed: stored ``(size, mtime_ns)`` are loaded once per split, files
whose pair is unchanged are not opened, new and changed ones are extracted in worker processes
and upserted in batches (one transaction per batch), and files gone from a split are removed.
Files that failed are read again only when they change or with ``retry_errors``. A killed scan
leaves every committed batch in place and the next scan picks up the rest.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

import click
import sqlite_utils

from . import store
from .extract import extract
from .labels.indexing import LabelOptions, LabelSetup, LabelSummary, index_labels, keep_image, mark_pending, prepare
from .near import pairs as near_index
from .walk import FileEntry, Stamped, is_image_name, relative, walk_stamped

Splits = dict[str, list[Path]]
MAX_CHUNK = 32


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


@dataclass
class ScanSummary:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    errors: int = 0
    seconds: float = 0.0
    scan_id: int = 0
    labels: LabelSummary | None = None

    def counts(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        return (
            f"{self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.removed} removed, {self.errors} errors in {self.seconds:.1f} s"
        ) + (f"; {self.labels.line()}" if self.labels else "")


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def plan_split(
    db: sqlite_utils.Database,
    split: str,
    roots: Sequence[Path],
    plan: Plan,
    keep: Callable[[str], bool] | None = None,
) -> None:
    """Compare one split's files on disk with the index; add the work to ``plan``. ``keep``
    narrows the split to some of the files (a VOC ImageSets list).

    A file is unchanged when its (path, size, mtime_ns) is stored: one set lookup per file. Only
    when some file is not, or the counts differ, are the paths compared to find what went."""
    stored = store.stored_stamps(db, split, plan.retry_errors)
    current = on_disk(roots, keep)
    fresh = sorted(stamped for stamped in current if stamped not in stored)
    plan.unchanged += len(current) - len(fresh)
    if not fresh and len(current) == len(stored):
        plan.gone[split] = []  # the same files, all unchanged
        return
    stored_paths = {path for path, _, _ in stored}
    for path, size, mtime in fresh:
        entry = FileEntry(path, rel_path(path, roots), size, mtime)
        plan.jobs.append(Job(split, entry, is_new=path not in stored_paths))
    plan.gone[split] = sorted(stored_paths - {path for path, _, _ in current})


def on_disk(roots: Sequence[Path], keep: Callable[[str], bool] | None) -> list[Stamped]:
    """(path, size, mtime_ns) of a split's image files (overlapping folders counted once)."""
    found = [f for root in roots for f in walk_stamped(str(root)) if keep is None or keep(f[0])]
    if len(roots) > 1:
        found = list(dict.fromkeys(found))
    return found


def rel_path(path: str, roots: Sequence[Path]) -> str:
    """The path relative to the first of the split's folders that holds it."""
    for root in roots:
        base = str(root).rstrip(os.sep) + os.sep
        if path.startswith(base):
            return relative(path, len(base))
    return os.path.basename(path)


def make_plan(
    db: sqlite_utils.Database, splits: Splits, setup: LabelSetup | None = None, retry_errors: bool = False
) -> Plan:
    plan = Plan(retry_errors=retry_errors)
    with _collector_paused():  # a tuple per file, none of them cyclic: nothing to collect
        for split, roots in splits.items():
            keep = keep_image(setup.plans[split]) if setup else None
            plan_split(db, split, roots, plan, keep)
    return plan


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
    """The FileEntry of an image file as it is on disk now; None if it is gone or not an image file."""
    if not is_image_name(path):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return FileEntry(path, rel_path, st.st_size, st.st_mtime_ns)


def plan_files(db: sqlite_utils.Database, split: str, files: Sequence[tuple[str, str]], plan: Plan) -> None:
    """Compare the given (path, rel_path) files of one split with the index; add the work to ``plan``.

    Unlike plan_split, only these files are looked at: the rest of the split is left alone.
    """
    stored = store.stored_subset(db, split, [path for path, _ in files])
    gone = plan.gone.setdefault(split, [])
    for path, rel_path in files:
        entry = stat_entry(path, rel_path)
        known = stored.get(path)
        if entry is None:
            if known is not None:
                gone.append(path)
        elif known is not None and known[:2] == (entry.size, entry.mtime_ns) and not known[2]:
            plan.unchanged += 1
        else:
            plan.jobs.append(Job(split, entry, is_new=known is None))


def update_files(
    db: sqlite_utils.Database,
    files: dict[str, list[tuple[str, str]]],
    scan_id: int,
    workers: int = 1,
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
    by_path = {job.entry.path: job for job in plan.jobs}
    with _results(plan.jobs, workers) as results:
        for path, extracted in results:
            rows.append(to_row(by_path[path], extracted, scan_id))
            _count(summary, by_path[path], extracted)
    with db.atomic():
        store.upsert_images(db, rows)
        for split, gone in plan.gone.items():
            summary.removed += store.delete_images(db, split, gone)
        if also is not None:
            also(plan)
        near_index.refresh(db)
    summary.seconds = time.monotonic() - started
    return summary


def _extract_job(path: str) -> tuple[str, dict[str, Any]]:
    return path, extract(path)


@contextmanager
def _results(jobs: Sequence[Job], workers: int) -> Iterator[Iterator[tuple[str, dict[str, Any]]]]:
    """Extraction results in completion order, from a process pool when it pays off."""
    paths = [job.entry.path for job in jobs]
    if workers <= 1 or len(paths) < 4 * workers:
        yield map(_extract_job, paths)
        return
    context = pool_context()
    if context.get_start_method() != "fork":
        resource_tracker.ensure_running()  # it unblocks signals itself, so it must start first
    with _interrupts_held():  # processes started now inherit the blocked SIGINT
        pool = context.Pool(workers, initializer=_ignore_interrupts)
    with pool:
        yield pool.imap_unordered(_extract_job, paths, chunksize=chunk_size(len(paths), workers))


def chunk_size(jobs: int, workers: int) -> int:
    """Files handed to a worker at a time: large enough that passing them costs little, small
    enough that every worker gets work to the end and the progress bar moves."""
    return max(1, min(MAX_CHUNK, jobs // (workers * 16)))


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C (SIGINT to the whole process group) to the main process, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold SIGINT while worker processes start, so a Ctrl-C cannot kill one half-started;
    this process gets it as soon as they are up."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def pool_context() -> multiprocessing.context.BaseContext:
    """fork where it is safe (one thread, so no lock can be held); forkserver or spawn otherwise."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def to_row(job: Job, extracted: dict[str, Any], scan_id: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "split": job.split,
        "path": job.entry.path,
        "rel_path": job.entry.rel_path,
        "size": job.entry.size,
        "mtime_ns": job.entry.mtime_ns,
        "scan_id": scan_id,
    }
    row.update(extracted)
    return row


class _Progress:
    """A click progress bar on a terminal, or nothing."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.started = time.monotonic()
        self.done = 0
        self.bar = None
        if enabled and total:
            self.bar = click.progressbar(
                length=total, label="Indexing", file=sys.stderr, show_pos=True, item_show_func=self._rate
            )
            self.bar.__enter__()

    def _rate(self, _: object) -> str:
        return f"{self.done / max(time.monotonic() - self.started, 1e-6):.0f} files/s"

    def advance(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1, current_item=self.done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def process(
    db: sqlite_utils.Database,
    jobs: Sequence[Job],
    scan_id: int,
    workers: int,
    batch_size: int,
    progress: _Progress,
    summary: ScanSummary,
) -> None:
    """Extract every job and upsert the rows, one transaction per batch (or every 2 s)."""
    by_path = {job.entry.path: job for job in jobs}
    batch: list[dict[str, Any]] = []
    flushed = time.monotonic()
    with _results(jobs, workers) as results:
        for path, extracted in results:
            job = by_path[path]
            batch.append(to_row(job, extracted, scan_id))
            _count(summary, job, extracted)
            progress.advance()
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
        one = index_labels(db, split, plans, scan_id, setup.convention, touched)
        for name in ("read", "unchanged", "removed", "labels", "problems"):
            setattr(total, name, getattr(total, name) + getattr(one, name))
        total.formats.update(one.formats)
    return total


def scan(
    db_path: str | Path,
    splits: Splits,
    workers: int | None = None,
    progress: bool = False,
    batch_size: int = 256,
    label_setup: LabelSetup | None = None,
    retry_errors: bool = False,
) -> ScanSummary:
    """Bring the index of ``splits`` (images, then labels) up to date; other splits in the database
    are untouched. Without ``label_setup`` the label format of each folder is detected."""
    started = time.monotonic()
    db = store.open_db(db_path)
    workers = workers or default_workers()
    setup = label_setup or prepare(db, splits, LabelOptions())
    arguments = {
        "splits": {k: [str(p) for p in v] for k, v in splits.items()},
        "workers": workers,
        "labels": {k: [p.format for p in v] for k, v in setup.plans.items()},
    }
    summary = ScanSummary(scan_id=store.start_scan(db, arguments))
    plan = make_plan(db, splits, setup, retry_errors)
    summary.unchanged = plan.unchanged
    mark_pending(db, {job.split for job in plan.jobs} | {split for split, gone in plan.gone.items() if gone})
    bar = _Progress(len(plan.jobs), progress)
    try:
        process(db, plan.jobs, summary.scan_id, workers, batch_size, bar, summary)
    finally:
        bar.close()
    for split, gone in plan.gone.items():
        summary.removed += store.delete_images(db, split, gone)
    for split, roots in splits.items():
        store.record_split(db, split, [str(r) for r in roots])
    summary.labels = index_split_labels(db, plan, setup, summary.scan_id)
    near_index.refresh(db)  # near_pairs of the new, changed and removed images
    summary.seconds = time.monotonic() - started
    store.finish_scan(db, summary.scan_id, summary.counts())
    db.close()
    return summary
