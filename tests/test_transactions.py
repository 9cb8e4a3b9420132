"""Transactions on an index shared by several connections: writers take the write lock up front and
wait for it (store.write_transaction), readers read one snapshot (store.read_snapshot).

Each test makes the interleaving it is about happen deterministically: another connection commits
between two statements of the code under test (a trace callback tells when), or holds the lock."""

from __future__ import annotations

import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import ROOT, invoke

from imgindex import store
from imgindex.api import Index
from imgindex.executors import Inline
from imgindex.labels import LabelOptions, index_labels, prepare
from imgindex.near import verdict
from imgindex.scan import scan
from imgindex.watch import Watcher

DATA = Path(__file__).parent / "data"
COCO128 = DATA / "coco128_sample"
COCO8_VAL = DATA / "coco8" / "images" / "val"
QUICK = store.LockPolicy(busy_timeout=0.05, attempts=2, backoff=0.01, max_backoff=0.01)


@pytest.fixture()
def labelled(tmp_path: Path) -> dict[str, Path]:
    """coco128's sample as a YOLO split (images/ beside labels/), coco8's validation images as val:
    two of them are re-encoded copies of train images."""
    root = tmp_path / "data"
    shutil.copytree(COCO128 / "images", root / "images")
    shutil.copytree(COCO128 / "labels", root / "labels")
    shutil.copytree(COCO8_VAL, tmp_path / "val")
    return {"db": tmp_path / "index.db", "train": root / "images" / "train2017", "val": tmp_path / "val"}


def scanned(folders: dict[str, Path]) -> Path:
    scan(folders["db"], {"train": [folders["train"]], "val": [folders["val"]]}, executor=Inline())
    return folders["db"]


@contextmanager
def writer_holding_the_lock(db: Path, seconds: float) -> Iterator[None]:
    """Another connection takes the write lock, writes, and commits after `seconds`."""
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('test.writer', ?)", [str(time.time())])
    timer = threading.Timer(seconds, conn.execute, ["COMMIT"])
    timer.start()
    try:
        yield
    finally:
        timer.join()
        conn.close()


def on_statement(conn: sqlite3.Connection, pattern: str, action: Callable[[], None]) -> None:
    """Run `action` once, just before the connection runs its first statement matching `pattern`."""
    done = False

    def trace(sql: str) -> None:
        nonlocal done
        if not done and re.search(pattern, sql):
            done = True
            action()

    conn.set_trace_callback(trace)


# ---------------------------------------------------------------- writers


def test_a_write_transaction_that_reads_first_waits_for_another_writers_commit(labelled: dict[str, Path]) -> None:
    """The verdict refresh reads near_stale, then writes: a deferred transaction was refused at its
    first write ("database is locked", without waiting) once another connection had committed."""
    db_path = scanned(labelled)
    db = store.open_db(db_path)
    try:
        db.execute("INSERT OR IGNORE INTO near_stale SELECT dhash FROM images WHERE dhash IS NOT NULL LIMIT 3")
        with writer_holding_the_lock(db_path, 0.5):
            started = time.monotonic()
            assert verdict.refresh(db) >= 1
            assert time.monotonic() - started >= 0.4  # it waited for the lock
        assert db.execute("SELECT count(*) FROM near_stale").fetchone()[0] == 0
    finally:
        db.close()


def test_two_writers_indexing_the_same_labels_never_insert_a_file_twice(labelled: dict[str, Path]) -> None:
    """Writer A reads which label files are stored, writer B indexes the same split and commits, then
    A writes: A used to insert B's rows again (UNIQUE constraint failed: label_files)."""
    db_path = scanned(labelled)
    splits = {"train": [labelled["train"]]}
    first, second = store.open_db(db_path), store.open_db(db_path)
    try:
        stored = first.execute("SELECT count(*) FROM label_files WHERE split = 'train'").fetchone()[0]
        first.execute("DELETE FROM label_files")  # both writers find every label file new
        setup = prepare(first, splits, LabelOptions())
        plans = setup.plans["train"]
        failures: list[BaseException] = []

        def other_writer() -> None:
            try:
                index_labels(second, "train", plans, 0, setup.convention, set())
            except BaseException as err:
                failures.append(err)

        thread = threading.Thread(target=other_writer)

        def let_the_other_writer_run() -> None:
            thread.start()
            thread.join(1.0)  # it finishes meanwhile, unless it waits for our write lock

        on_statement(first.conn, r"INSERT (OR IGNORE )?INTO verdict_stale", let_the_other_writer_run)
        index_labels(first, "train", plans, 0, setup.convention, set())
        first.conn.set_trace_callback(None)
        thread.join(30)
        assert failures == []
        files = first.execute("SELECT path, count(*) FROM label_files WHERE split = 'train' GROUP BY path").fetchall()
        assert len(files) == stored > 0 and {n for _, n in files} == {1}
        assert first.execute("SELECT count(*) FROM labels WHERE split = 'train'").fetchone()[0] > 0
    finally:
        first.close()
        second.close()


def test_a_scan_that_cannot_get_the_lock_stops_with_one_line(
    labelled: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = scanned(labelled)
    (labelled["val"] / "copy.jpg").write_bytes((labelled["val"] / "000000000036.jpg").read_bytes())
    monkeypatch.setattr(store, "LOCKS", QUICK)
    with writer_holding_the_lock(db_path, 2.0):
        result = invoke("scan", "--db", str(db_path), "-q", "--workers", "1", f"val={labelled['val']}", ok=False)
    assert result.exit_code == 1
    assert "is busy: another program kept its write lock" in result.output
    assert "Traceback" not in result.output


def test_a_watch_batch_refused_the_lock_is_applied_once_it_is_free(
    labelled: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watch used to die of "database is locked"; now the batch goes back to the queue."""
    db_path = scanned(labelled)
    monkeypatch.setattr(store, "LOCKS", QUICK)
    refused: list[str] = []
    watcher = Watcher(db_path, {"val": [labelled["val"]]}, settle=0.1, workers=1, on_busy=refused.append)
    monkeypatch.setattr("imgindex.watch.BUSY_PAUSE", 0.2)
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        assert watcher.ready.wait(30)
        added = labelled["val"] / "added.jpg"
        with writer_holding_the_lock(db_path, 2.5):
            shutil.copy(labelled["train"] / "000000000030.jpg", added)
            time.sleep(2.0)
        deadline = time.monotonic() + 20
        while not _indexed(db_path, added) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _indexed(db_path, added)
        assert thread.is_alive()
        assert refused and "is busy" in refused[0] and "applied again" in refused[0]
    finally:
        watcher.stop.set()
        thread.join(30)


def _indexed(db: Path, path: Path) -> bool:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT 1 FROM images WHERE path = ?", [str(path)]).fetchone() is not None
    finally:
        conn.close()


def test_every_write_transaction_starts_in_the_store() -> None:
    """One place for the transaction policy: no other module begins a transaction itself."""
    allowed = {("imgindex/store.py", "atomic")}
    found = set()
    for path in sorted((ROOT / "imgindex").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(ROOT).as_posix()
        for what, pattern in (("atomic", r"\.atomic\("), ("begin", r"[\"']BEGIN"), ("with conn", r"with [\w.]*conn:")):
            if re.search(pattern, text):
                found.add((name, what))
    assert found - allowed == {("imgindex/store.py", "begin")}


def test_a_removed_image_leaves_the_stored_verdict_in_the_same_transaction(labelled: dict[str, Path]) -> None:
    """A scan removes files in one transaction and recomputes the verdict in a later one: a reader
    in between met a label conflict whose image was gone (KeyError)."""
    db_path = scanned(labelled)
    db = store.open_db(db_path)
    try:
        ids = dict(db.execute("SELECT path, id FROM images WHERE path LIKE '%000000000036.jpg'").fetchall())
        train, val = (ids[str(labelled[split] / "000000000036.jpg")] for split in ("train", "val"))
        db.execute(
            "INSERT INTO label_conflicts VALUES (?, ?, NULL, 'copy', 'classes differ', 'person, cat')", [train, val]
        )
        assert store.delete_images(db, "val", [str(labelled["val"] / "000000000036.jpg")]) == 1
        assert db.execute("SELECT count(*) FROM label_conflicts WHERE ? IN (a, b)", [val]).fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM verdict_members WHERE image_id = ?", [val]).fetchone()[0] == 0
    finally:
        db.close()
    result = invoke("duplicates", "--db", str(db_path), ok=False)
    assert result.exit_code == 0, result.output
    assert "out of date" in result.output  # the verdict is recomputed by the write that follows


# ---------------------------------------------------------------- readers


def _deleting(db: Path, where: str) -> Callable[[], None]:
    """Another connection removes the images `where` says, with their near pairs, and commits."""

    def delete() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"DELETE FROM images WHERE {where}")
            conn.execute(
                "DELETE FROM near_pairs WHERE a NOT IN (SELECT id FROM images) OR b NOT IN (SELECT id FROM images)"
            )
            conn.execute("COMMIT")
        finally:
            conn.close()

    return delete


def _traced_reads(monkeypatch: pytest.MonkeyPatch, pattern: str, action: Callable[[], None]) -> None:
    """Every connection imgindex opens runs `action` before its first statement matching `pattern`."""
    register = store.register_functions

    def register_and_trace(conn: sqlite3.Connection) -> None:
        register(conn)
        on_statement(conn, pattern, action)

    monkeypatch.setattr(store, "register_functions", register_and_trace)


# the first statement after the pairs are read (their images' second signals are read next)
AFTER_PAIRS = r"CREATE TEMP TABLE IF NOT EXISTS near_wanted"


def test_duplicates_read_one_snapshot_while_a_writer_commits(
    labelled: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pairs are read, a writer removes images (and their pairs), the pairs' images are read:
    that failed (a KeyError, an IndexError: rows of two states of the index)."""
    db_path = scanned(labelled)
    expected = invoke("duplicates", "--db", str(db_path), "--json", "--max-distance", "6").output
    assert '"val"' in expected and "000000000036" in expected
    _traced_reads(monkeypatch, AFTER_PAIRS, _deleting(db_path, "split = 'val'"))
    result = invoke("duplicates", "--db", str(db_path), "--json", "--max-distance", "6", ok=False)
    assert result.exit_code == 0, result.output
    assert result.output == expected  # the state before the writer's commit, whole


def test_the_read_api_reads_one_snapshot(labelled: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = scanned(labelled)
    with Index(db_path, readonly=True) as index:
        expected = index.duplicates(max_distance=6)
    _traced_reads(monkeypatch, AFTER_PAIRS, _deleting(db_path, "split = 'val'"))
    with Index(db_path, readonly=True) as index:
        assert index.duplicates(max_distance=6) == expected
        with index.snapshot():  # several calls, one state
            before = index.query("SELECT count(*) n FROM images")
            _deleting(db_path, "path LIKE '%train2017/000000000025.jpg'")()
            assert index.query("SELECT count(*) n FROM images") == before == [{"n": 16}]
        assert index.query("SELECT count(*) n FROM images") == [{"n": 15}]


def test_reads_take_no_lock_and_leave_no_transaction_open(labelled: dict[str, Path]) -> None:
    db_path = scanned(labelled)
    with Index(db_path, readonly=True) as index:
        index.duplicates()
        index.query("SELECT 1")
        assert not index.db.conn.in_transaction
        with writer_holding_the_lock(db_path, 0.5), index.snapshot():
            started = time.monotonic()
            assert index.query("SELECT count(*) n FROM images") == [{"n": 20}]
            assert time.monotonic() - started < 0.3  # a writer holding the lock does not hold readers up
