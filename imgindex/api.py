"""The library API: one object per index, the same calls the command line makes.

from imgindex import Index

with Index("imgindex.db") as index:
    index.scan({"train": ["data/images/train"], "val": ["data/images/val"]})
    for line in index.describe_duplicates():
        print(line)
    leaks = index.duplicates()["intersections"]
    index.report(out_dir="logs")
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlite_utils

from . import check, export, quality, query, reviews, store
from .executors import Executor, closing_executor, executor_name, make_executor
from .extract import MAX_PIXELS
from .labels import LabelOptions, MissingAnswers, prepare
from .near import groups, verdict
from .near import verdict as verdict_store
from .quality import Quality
from .scan import Members, Progress, ScanSummary, Splits
from .scan import scan as run_scan
from .watch import Watcher

SplitFolders = Mapping[str, str | Path | Sequence[str | Path]]


class Index:
    """An imgindex database. ``readonly=True`` opens it for reading only (nothing is migrated or
    written); otherwise it is created when missing and brought to this version's schema."""

    def __init__(self, path: str | Path = "imgindex.db", *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.db: sqlite_utils.Database = store.open_readonly(path) if readonly else store.open_db(path)

    @classmethod
    def upgrade(cls, path: str | Path) -> tuple[list[str], int]:
        """Bring an index of an older imgindex up to date: (schema files applied, images whose
        near-duplicate pairs were recomputed). Refuses files that are not an index."""
        info = store.inspect_file(path)
        if not info.is_index:
            raise store.NotAnIndexError(str(path), info.tables)
        with cls(path) as index:  # migrations and views; refuses an index of a newer imgindex
            refreshed = verdict.refresh(index.db)
            quality.refresh(index.db)
            return list(info.pending), refreshed

    @property
    def pairs_out_of_date(self) -> bool:
        """Were images written since the near-duplicate pairs were computed (another program, or a
        scan still running)? The pairs read are then the stored ones."""
        with self.snapshot():
            return store.near_pairs_out_of_date(self.db)

    @contextmanager
    def snapshot(self) -> Iterator[Index]:
        """Every read inside the block sees one state of the index, whatever a scan or watch commits
        meanwhile (one read transaction; see store.read_snapshot). Each read call of this class is
        one snapshot on its own; this makes several calls one."""
        with store.read_snapshot(self.db):
            yield self

    def __enter__(self) -> Index:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def scan(
        self,
        splits: SplitFolders,
        *,
        labels: LabelOptions | None = None,
        ask: Callable[[MissingAnswers], LabelOptions] | None = None,
        workers: int | None = None,
        executor: Executor | str | None = None,
        batch_size: int = 256,
        retry_errors: bool = False,
        on_progress: Progress | None = None,
        max_pixels: int | None = None,
        quality_thresholds: Mapping[str, float | str] | None = None,
        members: Members | None = None,
        scheduler: str | None = None,
    ) -> ScanSummary:
        """Index the images, then the labels, of each split's folders, incrementally (see imgindex.scan.scan).

        ``splits`` maps a split name to a folder or a list of folders. ``executor`` is an Executor or
        the name of one (imgindex.executors.EXECUTORS); ``scheduler``, a Dask scheduler's address,
        runs extraction on that cluster; ``on_progress(done, total)`` follows extraction.
        ``max_pixels`` (default ``imgindex.extract.MAX_PIXELS``): an image that would decode to more
        pixels (a JPEG at its draft scale) gets a row with an error instead of being decoded; an
        Executor instance carries its own (``ProcessPool(max_pixels=...)``). ``quality_thresholds``
        (flag -> value, or "default") are kept and applied to the quality flags, as ``quality()``.
        ``members`` narrows a split to the image paths listed (a dataset file's .txt lists; see
        ``imgindex.datasets.read_definition``, whose splits, members and names file scan a dataset
        from its own definition)."""
        folders = as_splits(splits)  # refused before anything is started or written
        made = _executor(executor, workers, max_pixels, scheduler)
        with closing_executor(made, owned=made is not executor):
            return run_scan(
                self.db,
                folders,
                labels=labels,
                named=named_folders(splits),
                ask=ask,
                executor=made,
                batch_size=batch_size,
                retry_errors=retry_errors,
                on_progress=on_progress,
                quality_thresholds=quality_thresholds,
                members=members,
            )

    def watcher(
        self,
        splits: SplitFolders,
        *,
        ask: Callable[[MissingAnswers], LabelOptions] | None = None,
        workers: int | None = None,
        executor: Executor | str | None = None,
        max_pixels: int | None = None,
        scheduler: str | None = None,
        **settings: Any,
    ) -> Watcher:
        """A Watcher that scans ``splits`` and then follows their changes (``.run()`` until
        ``.stop`` is set). Labels are read as the last scan of each split read them. ``settings``:
        settle, batch_size, on_batch, on_ready, on_busy (see imgindex.watch.Watcher); ``max_pixels`` and
        ``scheduler`` as for scan."""
        folders = as_splits(splits)
        setup = prepare(self.db, folders, LabelOptions(), ask, named_folders(splits))
        made = _executor(executor, workers, max_pixels, scheduler)
        return Watcher(
            self.path, folders, executor=made, label_setup=setup, owns_executor=made is not executor, **settings
        )

    def duplicates(self, max_distance: int = groups.DEFAULT_MAX_DISTANCE, rule: str = "imgindex") -> dict[str, Any]:
        """The verdict: its rule, duplicate groups and scenes within each split ("splits") and across
        each pair of splits ("intersections"), and label conflicts. The default rule's verdict is
        the stored one; another rule or distance is computed now."""
        with self.snapshot():
            return groups.find_duplicates(self.db, max_distance, rule)

    def describe_duplicates(self, max_distance: int = groups.DEFAULT_MAX_DISTANCE, rule: str = "imgindex") -> list[str]:
        """The rule, DataGradients' sentences per split and pair of splits, scenes and label conflicts."""
        with self.snapshot():
            return groups.describe(self.db, max_distance, rule)

    def leakage(self, max_distance: int = groups.DEFAULT_MAX_DISTANCE, rule: str = "imgindex") -> list[dict[str, Any]]:
        """For each pair of splits: the duplicate groups (and scenes) with members in both."""
        return list(self.duplicates(max_distance, rule)["intersections"])

    def quality(self, thresholds: Mapping[str, float | str] | None = None) -> Quality:
        """The image-quality flags: the rule applied, counts per split and flag, the flagged images.
        ``thresholds`` (flag -> value, or "default") judges every image again from its stored
        measures, without opening it, and keeps the thresholds for later runs (a writable index)."""
        if thresholds:
            if self.readonly:
                raise store.IndexStateError(self.path, "quality thresholds are set on an index opened for writing")
            quality.refresh(self.db, thresholds)
        with self.snapshot():
            return quality.load(self.db)

    def check(
        self, limits: Mapping[str, object] | None = None, baseline: Mapping[str, set[str]] | None = None
    ) -> check.CheckResult:
        """The index held to the check rules (imgindex.check.RULES): each rule's default limit unless
        ``limits`` gives one (a count, "2%" or "off"); findings whose key ``baseline`` holds (rule ->
        keys, as CheckResult.baseline() writes) do not count."""
        rule_limits = check.limits(limits or {})
        with self.snapshot():
            return check.run(self.db, str(self.path), rule_limits, baseline or {})

    def export(
        self,
        out: str | Path,
        fmt: str = "yolo",
        leaks: str = "train",
        train_split: str | None = None,
        dry_run: bool = False,
        keep: str = "largest",
    ) -> export.ExportResult:
        """A leak-free, de-duplicated dataset definition written into ``out`` (a new or empty
        folder) in ``fmt`` (imgindex.export.EXPORTERS), with the removal list; ``leaks`` says where
        a group of copies in several splits goes (imgindex.export.LEAK_POLICIES), ``keep`` which copy
        stays (imgindex.export.KEEP_POLICIES). Nothing is
        written with ``dry_run``; the result holds the decisions either way."""
        with self.snapshot():
            return export.export(self.db, Path(out), fmt, leaks, train_split, dry_run, keep)

    def review(self, verdict: str, files: Sequence[str], note: str | None = None, source: str = "api") -> list[int]:
        """Record a reviewer's verdict (imgindex.reviews.VERDICTS) about files named SPLIT:PATH, and
        recompute the stored verdict, in one transaction. Returns the reviews' ids."""
        with store.write_transaction(self.db):
            ids = reviews.record(self.db, verdict, [reviews.resolve(self.db, f) for f in files], note, source)
            verdict_store.refresh(self.db)
        return ids

    def undo_review(self, review_id: int) -> bool:
        """Take a review back (the verdict is recomputed); False when there is none of that id."""
        with store.write_transaction(self.db):
            gone = reviews.undo(self.db, review_id)
            verdict_store.refresh(self.db)
        return gone

    def list_reviews(self) -> list[reviews.Listed]:
        """Every review, and whether it still applies (its files indexed unchanged)."""
        with self.snapshot():
            return reviews.listed(self.db)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a SQL query as dictionaries."""
        columns, rows = self.execute(sql, params)
        return [dict(zip(columns, row)) for row in rows]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """(column names, rows) of a SQL query."""
        with self.snapshot():
            return query.run_query(self.db, sql, params)

    def split_folders(self) -> dict[str, list[str]]:
        """split -> the folders its last scan covered."""
        folders: dict[str, list[str]] = {}
        for row in self.query("SELECT name, root FROM splits ORDER BY name, root"):
            folders.setdefault(row["name"], []).append(row["root"])
        return folders

    def report(
        self,
        out_dir: str | Path = "logs",
        title: str | None = None,
        config: str | Path | None = None,
        sections: list[Any] | None = None,
    ) -> Any:
        """Write Report.pdf and summary.json (DataGradients' layout) from the index alone, with the
        features of ``sections`` or of a DataGradients ``config`` YAML (default: every feature with
        data); returns a ReportOutcome (paths, features, errors)."""
        from .report.build import write_report

        with self.snapshot():
            return write_report(self.db, self.path, out_dir, title, config, sections=sections)


def _executor(
    executor: Executor | str | None, workers: int | None, max_pixels: int | None = None, scheduler: str | None = None
) -> Executor:
    if isinstance(executor, str) or executor is None:
        name = executor_name(executor, scheduler)
        return make_executor(name, workers, MAX_PIXELS if max_pixels is None else max_pixels, scheduler)
    if max_pixels is not None or scheduler is not None:
        raise ValueError(
            "max_pixels and scheduler are the executor's to set: pass them to it, e.g. ProcessPool(max_pixels=N)"
        )
    return executor


class SplitFolderError(ValueError):
    """A split given to scan or watch that cannot be indexed as given: a name that is no split
    name, or a folder that is missing, a file, or unreadable. Raised before anything is written:
    a mistyped folder would otherwise look like a split whose images were all removed."""


SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # a SPLIT=DIR name: letters, digits, '_', '-', '.'


def as_splits(splits: SplitFolders) -> Splits:
    """{split: [absolute folders]} from a folder or a list of folders per split, duplicates
    dropped; SplitFolderError for a split that cannot be indexed as given."""
    out: Splits = {}
    for name, folders in splits.items():
        if not isinstance(name, str) or not name.strip() or not name.isprintable():
            raise SplitFolderError(f"split name {name!r}: give a name such as 'train' (letters, digits, '_', '-', '.')")
        resolved = [_usable_folder(name, folder.expanduser()).resolve() for folder in _listed(folders)]
        if not resolved:
            raise SplitFolderError(f"split {name!r}: give at least one folder")
        out[name] = list(dict.fromkeys(resolved))
    return out


def _usable_folder(split: str, folder: Path) -> Path:
    try:
        return usable_folder(folder)
    except SplitFolderError as exc:
        raise SplitFolderError(f"split {split!r}: {exc}") from None


def usable_folder(folder: Path) -> Path:
    """The folder, when a scan can walk it; SplitFolderError saying what to do otherwise."""
    if not folder.exists():
        raise SplitFolderError(f"folder '{folder}' does not exist. Give an existing folder.")
    if not folder.is_dir():
        raise SplitFolderError(f"'{folder}' is a file, not a folder. Give the folder that holds the images.")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise SplitFolderError(f"folder '{folder}' cannot be read (permission denied). Give the scan read access.")
    return folder


def named_folders(splits: SplitFolders) -> dict[Path, Path]:
    """Each split folder named through a symlink: its resolved path -> the absolute path it was
    named by (label planning looks for class names beside the link too)."""
    out: dict[Path, Path] = {}
    for folders in splits.values():
        for folder in _listed(folders):
            named = Path(os.path.abspath(folder.expanduser()))
            out.setdefault(folder.expanduser().resolve(), named)
    return {resolved: named for resolved, named in out.items() if resolved != named}


def _listed(folders: str | Path | Sequence[str | Path]) -> list[Path]:
    listed = [folders] if isinstance(folders, (str, Path)) else list(folders)
    return [Path(folder) for folder in listed]
