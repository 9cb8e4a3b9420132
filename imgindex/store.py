"""The database: open it for writing (schema applied, views re-created) or for reading only (the
file checked, nothing written), write scan results in batches."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import marshal
import os
import random
import shlex
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils
from sqlite_utils.migrations import Migrations

from . import __version__
from .extract import EXTRACTOR
from .views import VIEWS

MIGRATION_SET = "imgindex"
# a row's mtime_ns, or -1 (never equal to a file's) when another version of the extraction wrote it
CURRENT_MTIME = f"CASE WHEN extractor IS {EXTRACTOR} THEN mtime_ns ELSE -1 END"


@functools.cache
def schema_files() -> tuple[tuple[str, str], ...]:
    """(name, sql) of every schema file, in filename order (read once per process)."""
    folder = resources.files("imgindex.schema")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return tuple((f.name, f.read_text(encoding="utf-8")) for f in files)


def migrations() -> Migrations:
    """One migration per schema file; each file is idempotent SQL."""
    migs = Migrations(MIGRATION_SET)
    for name, sql in schema_files():
        migs(name=name)(_script_runner(sql))
    return migs


def _script_runner(sql: str):  # type: ignore[no-untyped-def]
    statements = split_statements(sql)

    def run(db: sqlite_utils.Database) -> None:
        for statement in statements:  # inside the migration's transaction: no implicit COMMIT
            db.conn.execute(statement)

    return run


def split_statements(sql: str) -> list[str]:
    """A script's statements, in order: a statement ends with the line that completes it (a
    trigger's body holds several ';'; a comment may follow). Line by line: a new index's schema is
    split in about a millisecond, where a split character by character took some 50 ms."""
    statements: list[str] = []
    pending: list[str] = []
    for line in sql.splitlines(keepends=True):
        pending.append(line)
        text = "".join(pending).strip()
        if ";" in line and sqlite3.complete_statement(text):
            statements.append(text)
            pending = []
    rest = "".join(pending).strip()
    return [*statements, rest] if rest else statements  # comments, or an unfinished statement SQLite names


T = TypeVar("T")
SQLITE_HEADER = b"SQLite format 3\x00"
TABLES_LISTED = 5  # tables a "not an imgindex index" message names


class IndexStateError(Exception):
    """The file at --db cannot be used as it is; the message is one line naming the file and what to do."""

    def __init__(self, path: str | Path, message: str) -> None:
        super().__init__(message)
        self.path = Path(path)


class NoIndexError(IndexStateError):
    """Nothing at the path."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, f"No index at {path}: run `imgindex scan SPLIT=DIR ...` first, or pass --db.")


class NotADatabaseError(IndexStateError):
    """A file (or folder) that SQLite cannot read as a database."""

    def __init__(self, path: str | Path, what: str = "") -> None:
        super().__init__(
            path,
            f"{path} is not a SQLite database{f' ({what})' if what else ''}: "
            "pass --db the index file that `imgindex scan` writes (imgindex.db by default).",
        )


class NotAnIndexError(IndexStateError):
    """A SQLite database that imgindex did not write."""

    def __init__(self, path: str | Path, tables: Sequence[str]) -> None:
        shown = ", ".join(tables[:TABLES_LISTED]) + (", ..." if len(tables) > TABLES_LISTED else "")
        held = f"its tables: {shown}" if tables else "it has no tables"
        super().__init__(
            path,
            f"{path} is a SQLite database but not an imgindex index ({held}): pass --db the file of an "
            "imgindex index (`imgindex scan --db NEW.db SPLIT=DIR` creates one).",
        )


class NewerIndexError(IndexStateError):
    """An index written by a later imgindex: its schema is not this version's to read or change."""

    def __init__(self, path: str | Path, unknown: Sequence[str]) -> None:
        super().__init__(
            path,
            f"{path} was written by a newer imgindex (schema {', '.join(unknown)} is unknown to imgindex "
            f"{__version__}): upgrade imgindex with `pip install -U imgindex`.",
        )


class OlderIndexError(IndexStateError):
    """An index written by an earlier imgindex: this version's schema changes are not applied yet,
    or its views are not this version's (views are derived; the commands that write re-create them)."""

    def __init__(self, path: str | Path, pending: Sequence[str], views: Sequence[str] = ()) -> None:
        if pending:
            what = f"{path} was written by an older imgindex (schema {', '.join(pending)} not applied yet)"
        else:
            what = f"{path} holds views of another imgindex version ({', '.join(views)})"
        super().__init__(
            path,
            f"{what}: `imgindex upgrade --db {shlex.quote(str(path))}` brings it up to date, as does the next "
            "`imgindex scan` or `imgindex watch`.",
        )


class DatabaseBusy(IndexStateError):
    """Another connection kept the write lock through every attempt of LockPolicy."""

    def __init__(self, path: str | Path, waited: float) -> None:
        super().__init__(
            path,
            f"{path} is busy: another program kept its write lock for {waited:.0f} s; "
            "try again once it is done (a scan or watch holds it for one batch at a time).",
        )
        self.waited = waited


@dataclass(frozen=True)
class IndexFile:
    """What a SQLite file at --db holds, as far as imgindex cares."""

    path: Path
    tables: tuple[str, ...]  # its tables, SQLite's own left out, sorted
    applied: tuple[str, ...]  # imgindex schema files recorded in _sqlite_migrations, in order
    views: tuple[tuple[str, str], ...] = ()  # (name, CREATE VIEW statement) of its views

    @property
    def is_index(self) -> bool:
        """Written by imgindex: schema files recorded, and an images table."""
        return bool(self.applied) and "images" in self.tables

    @property
    def unknown(self) -> list[str]:
        """Schema files applied by a newer imgindex."""
        known = {name for name, _ in schema_files()}
        return [name for name in self.applied if name not in known]

    @property
    def pending(self) -> list[str]:
        """Schema files of this version not applied yet."""
        return [name for name, _ in schema_files() if name not in self.applied]

    @property
    def outdated_views(self) -> list[str]:
        """Views of this version that the file lacks or defines otherwise (open_db would re-create them)."""
        stored = dict(self.views)
        return [name for name, sql in fresh_schema().views if stored.get(name) != sql]


def inspect_file(path: str | Path) -> IndexFile:
    """Describe the SQLite file at ``path`` without writing to it; NoIndexError when there is
    nothing there, NotADatabaseError when it is not a SQLite database."""
    conn = _connect_readonly(path)
    try:
        return _describe(conn, Path(path))
    finally:
        conn.close()


def _connect_readonly(path: str | Path) -> sqlite3.Connection:
    """A connection that cannot write the file (SQLite URI mode=ro), after checking the file's header."""
    file = Path(path)
    if not file.exists():
        raise NoIndexError(path)
    if file.is_dir():
        raise NotADatabaseError(path, "it is a folder")
    try:
        with file.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as err:
        raise IndexStateError(path, f"Cannot read {path}: {err.strerror}; check its permissions or pass --db.") from err
    if header and header != SQLITE_HEADER:  # an empty file is an empty database
        raise NotADatabaseError(path)
    uri = file.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=LOCKS.busy_timeout)
    except sqlite3.Error as err:
        raise _unreadable(path, err) from err
    if not read_as_unchanging(file):
        return conn
    return _on_read_only_media(conn, file, uri)


def read_as_unchanging(file: Path) -> bool:
    """Whether an index lies in a folder this process cannot write, without the shared-memory file
    SQLite's write-ahead log needs beside it (read-only media): then it can only be read as an
    unchanging file (see _on_read_only_media)."""
    return not os.access(file.absolute().parent, os.W_OK) and not Path(f"{file}-shm").exists()


def _on_read_only_media(conn: sqlite3.Connection, file: Path, uri: str) -> sqlite3.Connection:
    """An index in a folder this process cannot write (read-only media, another user's folder),
    without the shared-memory file SQLite's write-ahead log needs beside it: SQLite cannot make
    one, so it cannot read through the log. With no log left to merge (writers merge it when they
    close), the file alone is the whole index and is opened as unchanging (URI immutable=1)."""
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
    log = Path(f"{file}-wal")
    if log.exists() and log.stat().st_size > 0:
        raise IndexStateError(
            file,
            f"Cannot read {file}: its folder cannot be written and it has a write-ahead log ({log.name}) "
            "not yet merged; copy the index with its -wal file to a folder you can write, or open it once "
            "where it can be written.",
        )
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=LOCKS.busy_timeout)


def _unreadable(path: str | Path, err: sqlite3.Error) -> IndexStateError:
    """The error for a SQLite failure while reading what the file is: a file SQLite cannot make
    sense of is not a database; a lock or an unopenable file is said as it is."""
    if isinstance(err, sqlite3.OperationalError):
        return IndexStateError(path, f"Cannot read {path}: {err}; check the file and its folder, then try again.")
    return NotADatabaseError(path, str(err))


def _describe(conn: sqlite3.Connection, path: Path) -> IndexFile:
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                "ORDER BY name"
            )
        ]
        applied: list[str] = []
        if Migrations.migrations_table in tables:
            rows = conn.execute(
                f"SELECT name FROM [{Migrations.migrations_table}] WHERE migration_set = ? ORDER BY rowid",
                [MIGRATION_SET],
            )
            applied = [r[0] for r in rows]
        views = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY name").fetchall()
    except sqlite3.Error as err:
        raise _unreadable(path, err) from err
    return IndexFile(path, tuple(tables), tuple(applied), tuple(views))


def require_current(info: IndexFile) -> None:
    """An index of exactly this version's schema, or the error saying what to do."""
    if not info.is_index:
        raise NotAnIndexError(info.path, info.tables)
    if info.unknown:
        raise NewerIndexError(info.path, info.unknown)
    if info.pending or info.outdated_views:
        raise OlderIndexError(info.path, info.pending, info.outdated_views)


def require_writable(info: IndexFile) -> None:
    """An index of this version or an older one, or a database holding nothing but imgindex's own
    tables (an empty file, a fresh SQLite database): what `open_db` may write into."""
    if not info.is_index and not set(info.tables) <= set(fresh_schema().tables):
        raise NotAnIndexError(info.path, info.tables)
    if info.unknown:
        raise NewerIndexError(info.path, info.unknown)


@dataclass(frozen=True)
class FreshSchema:
    """What open_db makes of an empty database."""

    tables: tuple[str, ...]
    views: tuple[tuple[str, str], ...]  # (name, CREATE VIEW statement)


@functools.cache
def fresh_schema() -> FreshSchema:
    """The tables and views of a new index of this version, made in memory."""
    db = sqlite_utils.Database(memory=True)
    try:
        migrations().apply(db)
        create_views(db)
        rows = db.execute("SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name")
        schema = rows.fetchall()
    finally:
        db.close()
    return FreshSchema(
        tables=tuple(name for kind, name, _ in schema if kind == "table"),
        views=tuple((name, sql) for kind, name, sql in schema if kind == "view"),
    )


def open_readonly(path: str | Path) -> sqlite_utils.Database:
    """Open an index of this version for reading only: never migrated, no view re-created, nothing
    written (SQLite URI mode=ro; temporary tables still work). Raises an IndexStateError when the
    file is missing, not a SQLite database, not an imgindex index, or from another imgindex version."""
    conn = _connect_readonly(path)
    try:
        require_current(_describe(conn, Path(path)))
    except BaseException:
        conn.close()
        raise
    conn.set_authorizer(_readonly_attach)
    register_functions(conn)
    return sqlite_utils.Database(conn)


def _readonly_attach(action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
    """ATTACH only read-only (a file: URI with mode=ro), so that a read connection creates no file."""
    if action != sqlite3.SQLITE_ATTACH or arg1 in ("", ":memory:"):
        return sqlite3.SQLITE_OK
    readonly = (arg1 or "").startswith("file:") and ("mode=ro" in (arg1 or "") or "immutable=1" in (arg1 or ""))
    return sqlite3.SQLITE_OK if readonly else sqlite3.SQLITE_DENY


def near_pairs_out_of_date(db: sqlite_utils.Database) -> bool:
    """True when images or labels were written since near_pairs and the verdict were computed (by a
    program other than imgindex's scan and watch, which keep them current)."""
    row = db.execute("SELECT EXISTS (SELECT 1 FROM near_stale) OR EXISTS (SELECT 1 FROM verdict_stale)").fetchone()
    return bool(row[0])


PAGE_SIZE = 16384  # a new index's pages: 7 image rows of about 2 KB each, where 4 KB pages hold 2


def open_db(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) an index for writing: schema applied, functions registered, views
    fresh. Refuses (IndexStateError, the file left as it is) a file that is not a SQLite database,
    a database holding other tables than imgindex's, and an index written by a newer imgindex."""
    new = not Path(path).exists() or Path(path).stat().st_size == 0
    if not new:
        require_writable(inspect_file(path))
    require_folder(Path(path))
    conn = sqlite3.connect(str(path), timeout=LOCKS.busy_timeout, isolation_level=None, check_same_thread=False)
    if new:
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    retry_busy(conn, lambda: conn.execute("PRAGMA journal_mode=WAL"))
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    register_functions(conn)
    db = sqlite_utils.Database(conn)
    bring_up_to_date(db, Path(path))
    if db.execute("SELECT EXISTS (SELECT 1 FROM deferred_upkeep)").fetchone()[0]:
        restore_deferred(db)  # a large write was killed before it built them
    return db


def require_folder(path: Path) -> None:
    """An index is written with its log beside it: its folder must exist and be writable."""
    folder = path.absolute().parent
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise IndexStateError(
            path, f"Cannot write {path}: the folder {folder} {what}; give --db a path in an existing folder."
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise IndexStateError(
            path,
            f"Cannot write {path}: the folder {folder} cannot be written; give --db a path in a folder you can write.",
        )


# ---------------------------------------------------------------- deferred upkeep
#
# Each of these costs every inserted row a B-tree insert (the hash indexes at a random place, as
# their keys are hashes) or a trigger's statement. A write adding many rows drops them first and
# builds them once at the end from the sorted keys, several times cheaper; each trigger's work is
# then done in one statement: what it would have recorded row by row.
BULK_ROWS = 2000  # fewest new rows worth it; and at least a quarter of the rows already there
BULK_CHECKPOINT = 64 << 20  # WAL bytes between checkpoints meanwhile (SQLite's 1,000 pages: 4 or 16 MB)
DEFERRABLE: dict[str, str | None] = {  # name -> the statement doing what it missed, when it is a trigger
    "images_dhash": None,
    "images_split_dhash": None,
    "images_sha256": None,
    "images_split_stamp": None,
    # the dHash of every image whose near pairs were not computed since it was written
    # (imgindex.near.pairs writes near_images for each image it pairs)
    "near_on_insert": "INSERT OR IGNORE INTO near_stale (dhash) SELECT dhash FROM images i "
    "WHERE dhash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM near_images n WHERE n.id = i.id)",
    # every split: a large write touches most of them, and judging one again costs a read of it
    "quality_on_insert": "INSERT OR IGNORE INTO quality_stale (split) SELECT DISTINCT split FROM images",
}


@contextmanager
def deferred_upkeep(db: sqlite_utils.Database, new_rows: int) -> Iterator[None]:
    """Around a write of ``new_rows`` rows: when that is many (BULK_ROWS, and a quarter of the index),
    the DEFERRABLE indexes and trigger are dropped before and re-created after, even when the block
    raises (a process killed in between leaves them to restore_deferred), and the WAL is
    checkpointed less often."""
    existing = db.execute("SELECT COALESCE(MAX(id), 0) FROM images").fetchone()[0]
    if new_rows < max(BULK_ROWS, existing // 4):
        yield
        return
    defer_upkeep(db)
    checkpoint = db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    page = db.execute("PRAGMA page_size").fetchone()[0]
    db.execute(f"PRAGMA wal_autocheckpoint={BULK_CHECKPOINT // page}")
    try:
        yield
    finally:
        db.execute(f"PRAGMA wal_autocheckpoint={int(checkpoint)}")
        restore_deferred(db)


@contextmanager
def index_built_after(db: sqlite_utils.Database, name: str, bulk: bool) -> Iterator[None]:
    """Inside the caller's write transaction: when ``bulk``, the index is dropped before the block
    and built again after it, from the sorted keys, at about half the cost of inserting each
    row's key at its place. A block that raises leaves it to the transaction's rollback."""
    row = bulk and db.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", [name]).fetchone()
    if not row:
        yield
        return
    db.execute(f"DROP INDEX {name}")
    yield
    db.execute(row[0])


def defer_upkeep(db: sqlite_utils.Database) -> None:
    with write_transaction(db):
        marks = ", ".join("?" * len(DEFERRABLE))
        query = f"SELECT name, type, sql FROM sqlite_master WHERE name IN ({marks})"
        for name, kind, sql in db.execute(query, list(DEFERRABLE)).fetchall():
            db.execute("INSERT OR REPLACE INTO deferred_upkeep (name, sql) VALUES (?, ?)", (name, sql))
            db.execute(f"DROP {kind.upper()} {name}")


def restore_deferred(db: sqlite_utils.Database) -> None:
    """Re-create what defer_upkeep dropped, and do what its triggers missed meanwhile."""
    with write_transaction(db):
        waiting = db.execute("SELECT name, sql FROM deferred_upkeep").fetchall()
        for name, sql in waiting:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone():
                db.execute(sql)
            if catch_up := DEFERRABLE.get(name):
                db.execute(catch_up)
        db.execute("DELETE FROM deferred_upkeep")


def bring_up_to_date(db: sqlite_utils.Database, path: Path) -> None:
    """Apply the schema files not applied yet and re-create the views, in one write transaction, when
    something is missing or outdated; an index already current is opened without taking the write
    lock. What is pending is read again under the lock: another writer may have applied it meanwhile."""
    info = _describe(db.conn, path)
    if Migrations.migrations_table in info.tables and not info.pending and not info.outdated_views:
        return
    with write_transaction(db):
        migrations().apply(db)
        create_views(db)


def create_views(db: sqlite_utils.Database) -> None:
    """Views are derived: every one of this version's is dropped and re-created."""
    with write_transaction(db):
        for name, sql in VIEWS.items():
            db.create_view(name, sql, replace=True)


def register_functions(conn: sqlite3.Connection) -> None:
    """SQL functions available on every connection imgindex opens."""
    conn.create_function("hamming", 2, hamming_hex, deterministic=True)


def hamming_hex(a: str | None, b: str | None) -> int | None:
    """Number of differing bits between two equal-length hex hashes."""
    if a is None or b is None or len(a) != len(b):
        return None
    return (int(a, 16) ^ int(b, 16)).bit_count()


# ---------------------------------------------------------------- transactions
#
# The one policy for every transaction imgindex runs on an index.
#
# Writers (scan, watch, upgrade) take the write lock when a write transaction starts (BEGIN
# IMMEDIATE), so what a transaction reads is what it writes over: another writer cannot commit in
# between. (A deferred transaction that read first and writes later is refused by SQLite with
# "database is locked" at once, without waiting, when another connection committed since its first
# read; a transaction that computes from stale rows and then inserts hits UNIQUE constraints.) A
# writer waits for another's lock in SQLite's busy handler for up to busy_timeout seconds, then
# pauses and tries again, `attempts` times in all; then DatabaseBusy.
#
# Readers read inside one deferred transaction on their read-only connection: in WAL mode every
# statement of it reads the snapshot of its first read, whatever writers commit meanwhile.

SQLITE_BUSY = 5  # the primary result code of a lock held elsewhere (extended codes keep it in their low byte)


@dataclass(frozen=True)
class LockPolicy:
    """How long a writer waits for the write lock."""

    busy_timeout: float = 10.0  # seconds SQLite's busy handler waits inside one attempt
    attempts: int = 6  # attempts before DatabaseBusy (about a minute in all)
    backoff: float = 0.1  # seconds paused after the first failed attempt, doubled after each further one
    max_backoff: float = 2.0

    def pause(self, failed: int) -> float:
        """Seconds to pause after `failed` failed attempts, jittered so that two waiting writers do
        not try again in step."""
        return min(self.backoff * 2 ** (failed - 1), self.max_backoff) * random.uniform(0.5, 1.0)


LOCKS = LockPolicy()


def is_busy(err: sqlite3.Error) -> bool:
    """A transient lock: another connection holds what this one needs (SQLITE_BUSY, extended or not)."""
    code = getattr(err, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return bool(code & 0xFF == SQLITE_BUSY)
    return isinstance(err, sqlite3.OperationalError) and "database is locked" in str(err)


def retry_busy(conn: sqlite3.Connection, action: Callable[[], T]) -> T:
    """``action()``, tried again after a pause while it fails on a transient lock, as LOCKS says;
    DatabaseBusy (naming the file) once the attempts are spent. Other errors pass through."""
    started, failed = time.monotonic(), 0
    while True:
        try:
            return action()
        except sqlite3.OperationalError as err:
            if not is_busy(err):
                raise
            failed += 1
            if failed >= LOCKS.attempts:
                raise DatabaseBusy(database_path(conn), time.monotonic() - started) from err
        time.sleep(LOCKS.pause(failed))


def database_path(conn: sqlite3.Connection) -> str:
    """The file of a connection's main database (empty for an in-memory one)."""
    row = conn.execute("PRAGMA database_list").fetchone()
    return str(row[2]) if row else ""


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """A write transaction holding the write lock from its start (BEGIN IMMEDIATE, waiting as LOCKS
    says): committed when the block ends, rolled back when it raises. Inside a write transaction
    already, it is a savepoint of that one. Every write of imgindex runs in one of these."""
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():  # a savepoint
            yield db
        return
    retry_busy(conn, lambda: conn.execute("BEGIN IMMEDIATE"))
    try:
        yield db
        retry_busy(conn, lambda: conn.execute("COMMIT"))
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def read_snapshot(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Everything read inside the block sees one state of the index: one deferred transaction
    (BEGIN), which takes no write lock and, in WAL mode, reads the snapshot of its first read
    whatever writers commit meanwhile. Inside a transaction already, it is that transaction."""
    conn = db.conn
    if conn.in_transaction:
        yield db
        return
    conn.execute("BEGIN")
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if conn.in_transaction:
        conn.execute("COMMIT")


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def stored_stamps(db: sqlite_utils.Database, split: str, retry_errors: bool = False) -> set[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every indexed file of a split. Rows written by another version
    of the extraction, and with ``retry_errors`` the files that failed, get mtime -1, so that they
    never look unchanged and are read again."""
    mtime = f"CASE WHEN error IS NULL THEN {CURRENT_MTIME} ELSE -1 END" if retry_errors else CURRENT_MTIME
    return set(db.execute(f"SELECT path, size, {mtime} FROM images WHERE split = ?", [split]))


def stamp_digest(stamps: Sequence[tuple[str, int, int]]) -> str:
    """A digest of a split's walk: its files' (path, size, mtime_ns), in walk order. (marshal's
    format may change with Python's version: then one scan compares the stamps file by file.)"""
    return hashlib.blake2b(marshal.dumps(list(stamps)), digest_size=16).hexdigest()


_SPLIT_ROWS = (  # what a split's rows add up to: any write by imgindex changes the count or newest scan
    "SELECT count(*) AS files, max(scan_id) AS last_scan, sum(size) AS total_size, total(mtime_ns) AS total_mtime, "
    f"sum(extractor IS NOT {EXTRACTOR}) AS other_version FROM images WHERE split = ?"
)


def split_unchanged(db: sqlite_utils.Database, split: str, digest: str) -> bool:
    """Is the split as a scan left it: a walk of the same digest, over rows that add up as then
    (none written since) and were all written by this extraction version?"""
    kept = db.execute(
        "SELECT files, last_scan, total_size, total_mtime FROM split_stamps WHERE split = ? AND digest = ?",
        [split, digest],
    ).fetchone()
    if kept is None:
        return False
    *now, other_version = db.execute(_SPLIT_ROWS, [split]).fetchone()
    return list(kept) == now and not other_version


def record_split_stamps(db: sqlite_utils.Database, digests: dict[str, str]) -> None:
    """Note each split's walk digest beside what its rows now add up to (after a scan wrote them)."""
    if not digests:
        return
    with write_transaction(db):
        for split, digest in digests.items():
            db.execute(
                "INSERT OR REPLACE INTO split_stamps (split, digest, files, last_scan, total_size, total_mtime) "
                f"SELECT ?, ?, files, last_scan, total_size, total_mtime FROM ({_SPLIT_ROWS})",
                [split, digest, split],
            )


def stored_subset(db: sqlite_utils.Database, split: str, paths: Sequence[str]) -> dict[str, tuple[int, int, bool]]:
    """path -> (size, mtime_ns, had_error) for the given paths of a split (those indexed); mtime -1
    for rows written by another version of the extraction."""
    found: dict[str, tuple[int, int, bool]] = {}
    for start in range(0, len(paths), 500):
        chunk = list(paths[start : start + 500])
        marks = ", ".join("?" for _ in chunk)
        rows = db.execute(
            f"SELECT path, size, {CURRENT_MTIME}, error IS NOT NULL FROM images WHERE split = ? AND path IN ({marks})",
            [split, *chunk],
        )
        found.update({path: (size, mtime, bool(err)) for path, size, mtime, err in rows})
    return found


def error_rows(db: sqlite_utils.Database, splits: Sequence[str]) -> int:
    """How many files of these splits the index holds as unreadable (a row with an error)."""
    marks = ", ".join("?" for _ in splits)
    return int(
        db.execute(
            f"SELECT COUNT(*) FROM images WHERE error IS NOT NULL AND split IN ({marks})", list(splits)
        ).fetchone()[0]
    )


def image_columns(db: sqlite_utils.Database) -> tuple[str, ...]:
    """The columns a scan writes into ``images``: all of the table's but ``id``. The schema
    (schema/*.sql) is their one definition; extraction and the scan fill them by name."""
    return tuple(row[1] for row in db.execute("PRAGMA table_info(images)") if row[1] != "id")


def upsert_images(db: sqlite_utils.Database, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace image rows, keyed by (split, path), in one transaction; ids stay stable.
    A key that is not a column of ``images`` is an error: nothing is dropped silently."""
    if not rows:
        return
    columns = image_columns(db)
    unknown = set().union(*rows) - set(columns)
    if unknown:
        raise ValueError(f"images has no column {', '.join(sorted(unknown))}: add it in a schema migration first")
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in ("split", "path"))
    sql = (
        f"INSERT INTO images ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT (split, path) DO UPDATE SET {updates}"
    )
    with write_transaction(db):
        db.conn.executemany(sql, [tuple(map(r.get, columns)) for r in rows])


# the stored verdict's rows naming an image (the parameters: its split and path, twice)
_VERDICT_ROWS_OF_IMAGE = (
    "DELETE FROM verdict_members WHERE image_id IN (SELECT id FROM images WHERE split = ? AND path = ?)",
    "DELETE FROM label_conflicts WHERE a IN (SELECT id FROM images WHERE split = ? AND path = ?) "
    "OR b IN (SELECT id FROM images WHERE split = ? AND path = ?)",
    "DELETE FROM verdict_pairs WHERE a IN (SELECT id FROM images WHERE split = ? AND path = ?) "
    "OR b IN (SELECT id FROM images WHERE split = ? AND path = ?)",
)


def delete_images(db: sqlite_utils.Database, split: str, paths: Iterable[str]) -> int:
    """Remove the given files of a split from the index; returns how many rows went. The stored
    verdict forgets them in the same transaction (as near_pairs does, by trigger): until the
    verdict is recomputed, readers of a committed state never meet a group member or a label
    conflict whose image is gone."""
    batch = [(split, p) for p in paths]
    with write_transaction(db):
        if batch:
            for sql in _VERDICT_ROWS_OF_IMAGE:
                db.conn.executemany(sql, [key * sql.count("path = ?") for key in batch])
            mark_verdict_stale(db)
        db.conn.executemany("DELETE FROM images WHERE split = ? AND path = ?", batch)
    return len(batch)


def mark_verdict_stale(db: sqlite_utils.Database) -> None:
    """Note that something the stored verdict reads has changed (imgindex.near.verdict.store then
    recomputes it). Called by every writer of near pairs, labels and removed images."""
    db.conn.execute("INSERT OR IGNORE INTO verdict_stale VALUES (1)")


def start_scan(db: sqlite_utils.Database, arguments: dict[str, Any]) -> int:
    with write_transaction(db):
        cur = db.conn.execute(
            "INSERT INTO scans (started_at, arguments) VALUES (?, ?)", [utc_now(), json.dumps(arguments)]
        )
    return int(cur.lastrowid or 0)


def finish_scan(db: sqlite_utils.Database, scan_id: int, counts: dict[str, Any]) -> None:
    sets = ", ".join(f"{k} = ?" for k in counts)
    with write_transaction(db):
        db.conn.execute(f"UPDATE scans SET ended_at = ?, {sets} WHERE id = ?", [utc_now(), *counts.values(), scan_id])


def record_split(db: sqlite_utils.Database, split: str, roots: Sequence[str]) -> None:
    """The split is now exactly these folders."""
    now = utc_now()
    with write_transaction(db):
        db.conn.execute("DELETE FROM splits WHERE name = ?", [split])
        db.conn.executemany(
            "INSERT INTO splits (name, root, scanned_at) VALUES (?, ?, ?)", [(split, r, now) for r in roots]
        )
