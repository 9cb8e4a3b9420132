"""`imgindex watch`: keep the index current while split folders change.

First an incremental scan, then watchdog events. Every event only marks a path (or a folder) as
"to look at"; a path is looked at once its size and mtime have not moved for ``settle`` seconds
and no event came for it in that time, so a file still being written is read once, complete.
Ready paths are applied in batches, each batch in one transaction (scan.update_files), so readers
never see half of a change. A batch that cannot get the write lock (a scan holding it longer than
store.LOCKS waits) is not lost: its paths go back to the queue and are applied again after a pause.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedNoWriteEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from . import store
from .executors import Executor, ProcessPool, closing_executor
from .labels import LabelOptions, LabelSetup, LabelSummary, index_labels, prepare
from .labels.formats import get as label_format
from .scan import Plan, ScanSummary, Splits, scan, update_files
from .walk import is_image_name, stored_text, walk_images

Roots = list[tuple[str, str]]  # (split, absolute root folder)
BUSY_PAUSE = 1.0  # seconds before a batch refused the write lock is tried again, times the refusals in a row
MAX_BUSY_PAUSE = 10.0
Stat = tuple[int, int] | None  # (size, mtime_ns), None when the path does not exist


@dataclass
class _Pending:
    first_event: float  # when the path entered the queue
    last_event: float  # last event, or last time the file was seen to have changed
    stat: Stat  # as seen then


class ChangeQueue:
    """Paths and folders touched by events, until they have settled. Thread-safe.

    Changes made together (a folder moved, a file renamed) are released together: paths leave
    the queue once the whole queue has been quiet for the settle time, or, under continuous
    activity, once they have waited `max_wait` seconds (and are themselves settled).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: dict[str, _Pending] = {}
        self._folders: set[str] = set()
        self._last_any = 0.0

    def touch(self, path: str, now: float | None = None) -> None:
        """An event for `path`: it must now stay quiet and unchanged for the settle time."""
        seen = _stat(path)
        now = time.monotonic() if now is None else now
        with self._lock:
            previous = self._paths.get(path)
            self._paths[path] = _Pending(previous.first_event if previous else now, now, seen)
            self._last_any = max(self._last_any, now)

    def touch_folder(self, folder: str) -> None:
        with self._lock:
            self._folders.add(folder)
            self._last_any = time.monotonic()

    def take_folders(self) -> list[str]:
        with self._lock:
            folders, self._folders = sorted(self._folders), set()
        return folders

    def __len__(self) -> int:
        with self._lock:
            return len(self._paths) + len(self._folders)

    def ready(self, settle: float, limit: int, max_wait: float, now: float | None = None) -> list[str]:
        """Up to `limit` paths quiet and unchanged on disk for `settle` seconds; they leave the queue."""
        now = time.monotonic() if now is None else now
        with self._lock:
            items = list(self._paths.items())
            all_quiet = now - self._last_any >= settle
        done: list[tuple[str, _Pending]] = []
        for path, pending in items:
            if now - pending.last_event < settle or not (all_quiet or now - pending.first_event >= max_wait):
                continue
            if _unchanged(path, pending, now):
                done.append((path, pending))
                if len(done) >= limit:
                    break
        with self._lock:  # an event that came meanwhile keeps its path queued
            taken = [path for path, pending in done if self._paths.get(path) is pending]
            for path in taken:
                del self._paths[path]
        return taken


def _stat(path: str) -> Stat:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _unchanged(path: str, pending: _Pending, now: float) -> bool:
    """Still as it was at the last event? If not (a write no event told of), wait again."""
    current = _stat(path)
    if current == pending.stat:
        return True
    pending.stat, pending.last_event = current, now
    return False


class _Handler(FileSystemEventHandler):
    """Turns watchdog events into queue entries; reads nothing itself."""

    def __init__(self, queue: ChangeQueue, wanted: Callable[[str], bool]) -> None:
        self.queue, self.wanted = queue, wanted

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, (FileOpenedEvent, FileClosedNoWriteEvent)):
            return  # reads, including our own
        paths = [os.fsdecode(event.src_path)]
        if event.event_type == "moved":
            paths.append(os.fsdecode(event.dest_path))
        if isinstance(event, (DirCreatedEvent, DirDeletedEvent, DirMovedEvent)):
            for folder in paths:
                self.queue.touch_folder(folder)
        elif not event.is_directory:
            for path in paths:
                if self.wanted(path):  # images and label files, not the index's own files, notes...
                    self.queue.touch(path)


@dataclass
class WatchSummary:
    initial: ScanSummary | None = None
    new: int = 0
    changed: int = 0
    removed: int = 0
    errors: int = 0
    label_files: int = 0  # label files read or removed
    batches: int = 0
    pending: int = 0
    seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def add(self, batch: ScanSummary) -> None:
        self.new += batch.new
        self.changed += batch.changed
        self.removed += batch.removed
        self.errors += batch.errors
        if batch.labels is not None:
            self.label_files += batch.labels.read + batch.labels.removed
        self.batches += 1

    def line(self) -> str:
        left = f"; {self.pending} changes not yet settled are left for the next scan" if self.pending else ""
        return (
            f"Stopped after {self.seconds:.1f} s: {self.new} new, {self.changed} changed, "
            f"{self.removed} removed, {self.errors} errors, {self.label_files} label files in {self.batches} batches{left}"
        )


def split_roots(splits: Splits) -> Roots:
    return [(split, os.path.abspath(root)) for split, folders in splits.items() for root in folders]


def locate(path: str, roots: Roots) -> list[tuple[str, str]]:
    """(split, rel_path) of every watched root holding `path`."""
    found = []
    for split, root in roots:
        if path.startswith(root + os.sep):
            found.append((split, os.path.relpath(path, root).replace(os.sep, "/")))
    return found


def group_by_split(paths: Iterable[str], roots: Roots) -> dict[str, list[tuple[str, str]]]:
    files: dict[str, list[tuple[str, str]]] = {}
    for path in paths:
        for split, rel_path in locate(path, roots):
            files.setdefault(split, []).append((path, rel_path))
    return files


def indexed_under(db: sqlite_utils.Database, folder: str) -> list[str]:
    """Indexed paths below a folder, any split, as on disk (a range on path: folder events are rare)."""
    text = stored_text(folder)
    low, high = text + os.sep, text + chr(ord(os.sep) + 1)
    rows = db.execute("SELECT path, path_bytes FROM images WHERE path >= ? AND path < ?", [low, high])
    return [path if raw is None else os.fsdecode(raw) for path, raw in rows]


def expand_folders(db: sqlite_utils.Database, queue: ChangeQueue) -> None:
    """A folder created, moved or deleted: look at everything in it, on disk and in the index."""
    for folder in queue.take_folders():
        paths = set(indexed_under(db, folder))
        if os.path.isdir(folder):
            paths.update(entry.on_disk for entry in walk_images(Path(folder)))
        for path in paths:
            queue.touch(path)


class LabelFiles:
    """Where each split's label files are, as the formats of its label plans say: which paths matter,
    which folders to watch."""

    def __init__(self, setup: LabelSetup | None) -> None:
        self.setup = setup
        self.dirs: list[tuple[str, str, bool]] = []  # (split, folder whose files are label files, recursive)
        self.files: dict[str, set[str]] = {}  # exact label-file path (COCO json, names file) -> splits
        for split, plans in (setup.plans if setup else {}).items():
            for plan in plans:
                watched = label_format(plan.format).watched(plan)
                self.dirs += [(split, str(folder), recursive) for folder, recursive in watched.folders]
                for file in watched.files:
                    self.files.setdefault(str(file), set()).add(split)

    def splits_of(self, path: str) -> set[str]:
        found = set(self.files.get(path, ()))
        found.update(split for split, folder, recursive in self.dirs if _within(path, folder, recursive))
        return found

    def folders(self) -> list[tuple[str, bool]]:
        """(folder, recursive) to watch besides the split folders."""
        watched = [(folder, recursive) for _, folder, recursive in self.dirs]
        watched += [(os.path.dirname(path), False) for path in self.files]
        return sorted(set(watched))


def _within(path: str, folder: str, recursive: bool) -> bool:
    """Is `path` below `folder` (directly in it, when not recursive)?"""
    return path.startswith(folder + os.sep) if recursive else os.path.dirname(path) == folder


class Watcher:
    """Follows split folders and applies their changes to the index until `stop` is set."""

    def __init__(
        self,
        db_path: str | Path,
        splits: Splits,
        settle: float = 0.5,
        tick: float = 0.1,
        batch_size: int = 256,
        workers: int = 1,
        executor: Executor | None = None,
        max_wait: float = 1.5,
        on_batch: Callable[[ScanSummary], None] | None = None,
        on_ready: Callable[[ScanSummary | None], None] | None = None,
        label_setup: LabelSetup | None = None,
        on_busy: Callable[[str], None] | None = None,
        owns_executor: bool = False,
    ) -> None:
        self.db_path, self.splits, self.roots = db_path, splits, split_roots(splits)
        self.settle, self.tick, self.batch_size = settle, tick, batch_size
        self.executor = executor or ProcessPool(workers)
        self.owns_executor = owns_executor or executor is None  # closed when the watch ends
        self.max_wait = max(max_wait, settle)
        self.on_batch, self.on_ready, self.on_busy = on_batch, on_ready, on_busy
        self.refusals = 0  # batches refused the write lock in a row
        self.label_setup = label_setup
        self.labels = LabelFiles(None)
        self.queue = ChangeQueue()
        self.stop = threading.Event()
        self.observer = Observer()
        self.ready = threading.Event()  # set once the initial scan is done and events are followed

    def run(self, initial_scan: bool = True) -> WatchSummary:
        summary = WatchSummary()
        if self.label_setup is None:
            db = store.open_db(self.db_path)
            try:
                self.label_setup = prepare(db, self.splits, LabelOptions())
            finally:
                db.close()
        self.labels = LabelFiles(self.label_setup)
        self._schedule()  # before the scan: nothing changed during it is missed
        self.observer.start()
        try:
            with closing_executor(self.executor, owned=self.owns_executor):
                if initial_scan:
                    summary.initial = scan(
                        self.db_path, self.splits, executor=self.executor, label_setup=self.label_setup
                    )
                self._follow(summary, summary.initial)
        finally:
            self.observer.stop()
            self.observer.join()
        summary.pending = len(self.queue)
        summary.seconds = time.monotonic() - summary.started
        return summary

    def wanted(self, path: str) -> bool:
        return (is_image_name(path) and bool(locate(path, self.roots))) or bool(self.labels.splits_of(path))

    def _schedule(self) -> None:
        handler = _Handler(self.queue, self.wanted)
        recursive_roots = [root for _, root in self.roots]
        for root in recursive_roots:
            self.observer.schedule(handler, root, recursive=True)
        for folder, recursive in self.labels.folders():
            inside = any(folder == r or folder.startswith(r + os.sep) for r in recursive_roots)
            if not inside and os.path.isdir(folder):
                self.observer.schedule(handler, folder, recursive=recursive)

    def _follow(self, summary: WatchSummary, initial: ScanSummary | None) -> None:
        db = store.open_db(self.db_path)
        arguments = {
            "watch": {k: [str(p) for p in v] for k, v in self.splits.items()},
            "executor": type(self.executor).__name__,
        }
        scan_id = store.start_scan(db, arguments)
        self.ready.set()
        if self.on_ready is not None:
            self.on_ready(initial)
        try:
            while not self.stop.is_set():
                if not self.apply_ready(db, scan_id, summary):
                    self.stop.wait(self.tick)
        finally:
            counts = {
                "new": summary.new,
                "changed": summary.changed,
                "unchanged": 0,
                "removed": summary.removed,
                "errors": summary.errors,
                "seconds": round(time.monotonic() - summary.started, 3),
            }
            store.finish_scan(db, scan_id, counts)
            db.close()

    def apply_ready(self, db: sqlite_utils.Database, scan_id: int, summary: WatchSummary) -> bool:
        """Apply one batch of settled changes; False when there was nothing to do. A batch refused
        the write lock goes back to the queue, to be applied after a pause."""
        expand_folders(db, self.queue)  # reads only
        paths = self.queue.ready(self.settle, self.batch_size, self.max_wait)
        if not paths:
            return False
        try:
            self._apply(db, scan_id, paths, summary)
        except store.DatabaseBusy as busy:
            self._retry_later(paths, f"another program kept its write lock for {busy.waited:.0f} s")
        except sqlite3.OperationalError as err:
            if not store.is_busy(err):
                raise
            self._retry_later(paths, str(err))
        else:
            self.refusals = 0
        return True

    def _apply(self, db: sqlite_utils.Database, scan_id: int, paths: list[str], summary: WatchSummary) -> None:
        files = group_by_split((p for p in paths if is_image_name(p)), self.roots)
        label_splits = set().union(*(self.labels.splits_of(p) for p in paths))
        labels = LabelSummary()
        batch = update_files(
            db,
            files,
            scan_id,
            executor=self.executor,
            also=lambda plan: self._index_labels(db, plan, label_splits, scan_id, labels),
        )
        batch.labels = labels
        if batch.new or batch.changed or batch.removed or labels.read or labels.removed:
            summary.add(batch)
            if self.on_batch is not None:
                self.on_batch(batch)

    def _retry_later(self, paths: list[str], why: str) -> None:
        """Queue the batch's paths again, say so, and pause (longer after each refusal in a row)."""
        for path in paths:
            self.queue.touch(path)
        self.refusals += 1
        pause = min(BUSY_PAUSE * self.refusals, MAX_BUSY_PAUSE)
        if self.on_busy is not None:
            self.on_busy(f"{self.db_path} is busy ({why}): {len(paths)} changes are applied again in {pause:.0f} s")
        self.stop.wait(pause)

    def _index_labels(
        self, db: sqlite_utils.Database, plan: Plan, label_splits: set[str], scan_id: int, total: LabelSummary
    ) -> None:
        """Labels of the splits whose label files or images changed (inside the batch's transaction)."""
        setup = self.label_setup
        if setup is None:
            return
        for split, plans in setup.plans.items():
            touched = {job.entry.path for job in plan.jobs if job.split == split} | set(plan.gone.get(split, []))
            if touched or split in label_splits:
                one = index_labels(db, split, plans, scan_id, setup.convention, touched)
                total.read += one.read
                total.removed += one.removed
