"""The database: open it (schema applied, views re-created), write scan results in batches."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from .extract import EXTRACTOR
from .views import VIEWS

MIGRATION_SET = "imgindex"
# a row's mtime_ns, or -1 (never equal to a file's) when another version of the extraction wrote it
CURRENT_MTIME = f"CASE WHEN extractor IS {EXTRACTOR} THEN mtime_ns ELSE -1 END"


def schema_files() -> list[tuple[str, str]]:
    """(name, sql) of every schema file, in filename order."""
    folder = resources.files("imgindex.schema")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name, f.read_text(encoding="utf-8")) for f in files]


def migrations() -> Migrations:
    """One migration per schema file; each file is idempotent SQL."""
    migs = Migrations(MIGRATION_SET)
    for name, sql in schema_files():
        migs(name=name)(_script_runner(sql))
    return migs


def _script_runner(sql: str):  # type: ignore[no-untyped-def]
    def run(db: sqlite_utils.Database) -> None:
        db.executescript(sql)

    return run


def open_db(path: str | Path, readonly: bool = False) -> sqlite_utils.Database:
    """Open (creating if needed) an index: schema applied, functions registered, views fresh."""
    if readonly:
        return _open_readonly(path)
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    register_functions(conn)
    db = sqlite_utils.Database(conn)
    migrations().apply(db)
    create_views(db)
    return db


def _open_readonly(path: str | Path) -> sqlite_utils.Database:
    if not Path(path).exists():
        raise FileNotFoundError(str(path))
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    register_functions(conn)
    return sqlite_utils.Database(conn)


def create_views(db: sqlite_utils.Database) -> None:
    """Views are derived, so they are dropped and re-created on every open."""
    with db.atomic():
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


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def stored_stamps(db: sqlite_utils.Database, split: str, retry_errors: bool = False) -> set[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every indexed file of a split. Rows written by another version
    of the extraction, and with ``retry_errors`` the files that failed, get mtime -1, so that they
    never look unchanged and are read again."""
    mtime = f"CASE WHEN error IS NULL THEN {CURRENT_MTIME} ELSE -1 END" if retry_errors else CURRENT_MTIME
    return set(db.execute(f"SELECT path, size, {mtime} FROM images WHERE split = ?", [split]))


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
    with db.atomic():
        db.conn.executemany(sql, [tuple(r.get(c) for c in columns) for r in rows])


def delete_images(db: sqlite_utils.Database, split: str, paths: Iterable[str]) -> int:
    """Remove the given files of a split from the index; returns how many rows went."""
    batch = [(split, p) for p in paths]
    with db.atomic():
        db.conn.executemany("DELETE FROM images WHERE split = ? AND path = ?", batch)
    return len(batch)


def start_scan(db: sqlite_utils.Database, arguments: dict[str, Any]) -> int:
    with db.atomic():
        cur = db.conn.execute(
            "INSERT INTO scans (started_at, arguments) VALUES (?, ?)", [utc_now(), json.dumps(arguments)]
        )
    return int(cur.lastrowid or 0)


def finish_scan(db: sqlite_utils.Database, scan_id: int, counts: dict[str, Any]) -> None:
    sets = ", ".join(f"{k} = ?" for k in counts)
    with db.atomic():
        db.conn.execute(f"UPDATE scans SET ended_at = ?, {sets} WHERE id = ?", [utc_now(), *counts.values(), scan_id])


def record_split(db: sqlite_utils.Database, split: str, roots: Sequence[str]) -> None:
    """The split is now exactly these folders."""
    now = utc_now()
    with db.atomic():
        db.conn.execute("DELETE FROM splits WHERE name = ?", [split])
        db.conn.executemany(
            "INSERT INTO splits (name, root, scanned_at) VALUES (?, ?, ?)", [(split, r, now) for r in roots]
        )
