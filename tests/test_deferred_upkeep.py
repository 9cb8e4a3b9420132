"""A scan adding many rows builds the hash indexes once at the end instead of row by row
(store.deferred_upkeep): the index it leaves is the one a row-by-row scan leaves, and a scan
killed while they wait leaves them to the next writer, with nothing lost."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import DATA, ROOT, invoke, run_imgindex

from imgindex import Index, consistency, store

TRAIN = DATA / "coco128_sample" / "images" / "train2017"
VAL = DATA / "coco8" / "images" / "val"
SPLITS = {"train": TRAIN, "val": VAL}


def schema_objects(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT type, name FROM sqlite_master WHERE type IN ('index', 'trigger') ORDER BY 2"
        ).fetchall()
    finally:
        conn.close()


def waiting(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM deferred_upkeep").fetchone()[0])
    finally:
        conn.close()


def test_a_large_scan_leaves_the_index_a_row_by_row_scan_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("scan", "--db", str(tmp_path / "rows.db"), "--executor", "inline", f"train={TRAIN}", f"val={VAL}", "-q")
    deferred: list[int] = []
    monkeypatch.setattr(store, "BULK_ROWS", 4)
    original = store.defer_upkeep
    monkeypatch.setattr(store, "defer_upkeep", lambda db: deferred.append(1) or original(db))
    with Index(tmp_path / "bulk.db") as index:
        summary = index.scan(SPLITS, executor="inline", batch_size=3)
    assert deferred == [1] and summary.new == 20
    assert schema_objects(tmp_path / "bulk.db") == schema_objects(tmp_path / "rows.db")
    assert waiting(tmp_path / "bulk.db") == 0
    assert consistency.count(consistency.compare_files(tmp_path / "bulk.db", tmp_path / "rows.db")) == 0
    assert "2 duplicates between train and val" in invoke("duplicates", "--db", str(tmp_path / "bulk.db")).output


def test_a_few_new_rows_are_written_with_the_indexes_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Index(tmp_path / "i.db") as index:
        index.scan({"train": TRAIN}, executor="inline")
    deferred: list[int] = []
    monkeypatch.setattr(store, "defer_upkeep", lambda db: deferred.append(1))
    with Index(tmp_path / "i.db") as index:
        assert index.scan(SPLITS, executor="inline").new == 4  # 4 new rows against 16: below the bar
    assert deferred == []


KILLED_SCAN = """
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from imgindex import Index, store
    store.BULK_ROWS = 1
    store.restore_deferred = lambda db: os.kill(os.getpid(), signal.SIGKILL)  # dies before building them
    with Index({db!r}) as index:
        index.scan({{"train": {train!r}, "val": {val!r}}}, executor="inline")
"""


def test_a_scan_killed_while_the_indexes_wait_leaves_them_to_the_next_writer(tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    script = textwrap.dedent(KILLED_SCAN).format(root=str(ROOT), db=str(db), train=str(TRAIN), val=str(VAL))
    died = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert died.returncode == -9, died.stderr
    assert waiting(db) == 6  # four indexes and two triggers wait
    assert ("index", "images_sha256") not in schema_objects(db)
    readable = run_imgindex("sql", "--db", str(db), "select count(*) from images")
    assert readable.returncode == 0 and readable.stdout.split()[-1] == "20"  # readers see every row meanwhile
    again = run_imgindex("scan", "--db", str(db), f"train={TRAIN}", f"val={VAL}", "-q")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("0 new, 0 changed, 20 unchanged")
    invoke("scan", "--db", str(tmp_path / "clean.db"), "--executor", "inline", f"train={TRAIN}", f"val={VAL}", "-q")
    assert waiting(db) == 0
    assert schema_objects(db) == schema_objects(tmp_path / "clean.db")
    assert consistency.count(consistency.compare_files(db, tmp_path / "clean.db")) == 0
