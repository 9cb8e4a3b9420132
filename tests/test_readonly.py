"""Read commands only read: sql, duplicates, report and serve leave the index file as it was, and
refuse with one line a file that is not an index of this version (missing, not SQLite, another
program's database, a newer or an older index). `imgindex upgrade` (and a scan) bring an older
index up to date."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import sqlite_utils
from conftest import DATA, ROOT, drop_file_read_override, free_port, invoke, run_imgindex

from imgindex import store
from imgindex.report import ReportError, build_report
from imgindex.views import VIEWS

VAL = DATA / "coco8" / "images" / "val"
TRAIN = DATA / "coco128_sample" / "images" / "train2017"  # two of its images are re-encoded copies of val's
OLDER_FROM = "008_windows.sql"  # make_older undoes this schema file (the window hashes) and the later ones
UNDONE = [name for name, _ in store.schema_files() if name >= OLDER_FROM]
LAST_MIGRATION = ", ".join(UNDONE)  # as the messages list the pending schema files
QUALITY_SQL = dict(store.schema_files())["010_quality.sql"]
QUALITY_COLUMNS = re.findall(r"ADD COLUMN (\w+)", QUALITY_SQL)  # what 010 adds to images
STALE_TRIGGERS = ("near_on_insert", "near_on_update", "near_on_delete")  # what the last migration re-creates


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wal_content(db: Path) -> bytes:
    """What the write-ahead log holds beside the database (nothing when it is absent)."""
    wal = Path(f"{db}-wal")
    return wal.read_bytes() if wal.exists() else b""


def table_names(db: Path) -> list[str]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("select name from sqlite_master order by name")]
    finally:
        conn.close()


def write(db: Path, *statements: str) -> None:
    """Change the database as another program would; closing checkpoints the WAL into the file."""
    conn = sqlite3.connect(db)
    with conn:
        for sql in statements:
            conn.execute(sql)
    conn.close()
    assert wal_content(db) == b""


@pytest.fixture
def index(tmp_path: Path) -> Path:
    db = tmp_path / "index.db"
    invoke("scan", "--db", str(db), f"train={TRAIN}", f"val={VAL}", "-q")
    assert wal_content(db) == b""  # the scan closed the database: everything is in the file
    return db


def error_line(args: list[str]) -> str:
    """Run a command that must fail; its output is one line, never a traceback."""
    result = invoke(*args, ok=False)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: ")
    return line


def read_commands(db: Path, tmp_path: Path) -> list[list[str]]:
    at = ["--db", str(db)]
    return [
        ["sql", *at, "select split, count(*) n from images group by split"],
        ["sql", *at, "--json", "select * from duplicate_groups"],
        ["duplicates", *at],
        ["duplicates", *at, "--json"],
        ["duplicates", *at, "--json", "--max-distance", "12"],  # pairs above the stored 8 bits: computed
        ["report", *at, "--out", str(tmp_path / "logs")],
    ]


def test_read_commands_leave_the_index_byte_for_byte_unchanged(index: Path, tmp_path: Path) -> None:
    before = digest(index)
    for args in read_commands(index, tmp_path):
        result = invoke(*args)
        assert result.stderr == "", result.stderr  # no warning: the pairs are current
        assert digest(index) == before, f"{args[0]} changed the index"
        assert wal_content(index) == b"", f"{args[0]} wrote to the write-ahead log"
    assert "train & val: There are 2 duplicates" in invoke("duplicates", "--db", str(index)).output
    assert (tmp_path / "logs" / "index" / "Report.pdf").is_file()


def test_read_commands_in_a_real_process_leave_the_index_unchanged(index: Path) -> None:
    before = digest(index)
    for args in (["sql", "--json", "select count(*) n from near_pairs"], ["duplicates", "--max-distance", "12"]):
        proc = run_imgindex(*args, "--db", str(index))
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
    assert digest(index) == before and wal_content(index) == b""


@pytest.mark.skipif(sys.platform != "linux", reason="Linux permissions and capabilities")
def test_an_index_in_a_folder_that_cannot_be_written_is_read(index: Path, tmp_path: Path) -> None:
    """Read-only media: SQLite cannot make the shared-memory file its write-ahead log needs, so a
    fully merged index is read as the unchanging file it is; one whose log is not merged yet is
    refused in one line that says what to do."""
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(index, media / "index.db")
    as_user = {"preexec_fn": drop_file_read_override} if os.geteuid() == 0 else {}
    media.chmod(0o555)
    try:
        expected = invoke("duplicates", "--db", str(index), "--json").output
        proc = run_imgindex("duplicates", "--db", str(media / "index.db"), "--json", **as_user)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == expected.replace(str(index), str(media / "index.db"))
        assert sorted(p.name for p in media.iterdir()) == ["index.db"]  # nothing made beside it
        media.chmod(0o755)
        Path(f"{media / 'index.db'}-wal").write_bytes(b"\0" * 32)  # a log left by a writer that was killed
        media.chmod(0o555)
        refused = run_imgindex("sql", "--db", str(media / "index.db"), "select 1", **as_user)
    finally:
        media.chmod(0o755)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "write-ahead log (index.db-wal) not yet merged" in refused.stderr


def fetch(url: str, timeout: float = 30) -> bytes:
    """GET url, waiting for the server to start answering."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.status == 200
                return bytes(response.read())
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_serve_leaves_the_index_unchanged(index: Path) -> None:
    before = digest(index)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "imgindex", "serve", "--db", str(index), "--port", str(port)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        assert b"index" in fetch(f"{base}/index")
        page = fetch(f"{base}/index/images").decode()
        assert "imgindex-thumb" in page  # the image list, with thumbnails
        assert fetch(f"{base}/-/imgindex/image/1/thumbnail").startswith(b"\xff\xd8")
        assert b"train" in fetch(f"{base}/index/leakage")
        assert b"rows" in fetch(f"{base}/index/near_duplicates.json?distance=8")
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert b"Traceback" not in stderr, stderr.decode()
    assert digest(index) == before and wal_content(index) == b""


@pytest.mark.skipif(sys.platform != "linux", reason="Linux permissions and capabilities")
def test_serve_reads_an_index_on_read_only_media_and_refuses_a_busy_port(index: Path, tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(index, media / "index.db")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "imgindex", "serve", "--db", str(media / "index.db"), "--port", str(port)]
    as_user = {"preexec_fn": drop_file_read_override} if os.geteuid() == 0 else {}
    media.chmod(0o555)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **as_user)
    try:
        assert b"train" in fetch(f"http://127.0.0.1:{port}/index/leakage")
        busy = run_imgindex("serve", "--db", str(index), "--port", str(port))
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        media.chmod(0o755)
    assert b"Traceback" not in stderr, stderr.decode()
    assert sorted(p.name for p in media.iterdir()) == ["index.db"]
    assert busy.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr, busy.stderr
    assert "give another --port" in busy.stderr and "Serving" not in busy.stdout


@pytest.fixture
def other_db(tmp_path: Path) -> Path:
    """Another program's SQLite database."""
    db = tmp_path / "other.db"
    write(db, "create table people (name text)", "insert into people values ('Ada')")
    return db


def every_command(db: Path) -> list[list[str]]:
    at = ["--db", str(db)]
    return [
        ["sql", *at, "select 1"],
        ["duplicates", *at],
        ["report", *at, "--out", str(db.parent / "logs")],
        ["serve", *at],
        ["upgrade", *at],
        ["scan", *at, "-q", f"val={VAL}"],
    ]


def test_another_programs_database_is_refused_and_left_alone(other_db: Path) -> None:
    before = digest(other_db)
    for args in every_command(other_db):
        line = error_line(args)
        assert f"{other_db} is a SQLite database but not an imgindex index (its tables: people)" in line, args[0]
        assert "pass --db the file of an imgindex index" in line
        assert digest(other_db) == before, f"{args[0]} changed the file"
        assert table_names(other_db) == ["people"]
    assert not (other_db.parent / "logs").exists()


def test_a_subprocess_refuses_another_programs_database_in_one_line(other_db: Path) -> None:
    proc = run_imgindex("sql", "--db", str(other_db), "select 1")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"Error: {other_db} is a SQLite database but not an imgindex index (its tables: people): pass --db the "
        "file of an imgindex index (`imgindex scan --db NEW.db SPLIT=DIR` creates one)."
    ]


@pytest.mark.parametrize("content", ["text", "jpeg"])
def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path, content: str) -> None:
    db = tmp_path / "notes.db"
    if content == "jpeg":
        shutil.copy(VAL / "000000000036.jpg", db)
    else:
        db.write_text("split,path\nval,a.jpg\n" * 20)
    before = digest(db)
    for args in every_command(db):
        line = error_line(args)
        assert f"{db} is not a SQLite database: pass --db the index file that `imgindex scan` writes" in line
        assert digest(db) == before
    proc = run_imgindex("duplicates", "--db", str(db))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_missing_index_is_named_and_not_created(tmp_path: Path) -> None:
    db = tmp_path / "missing.db"
    for args in every_command(db)[:5]:  # every command but scan, which creates it
        assert error_line(args) == f"Error: No index at {db}: run `imgindex scan SPLIT=DIR ...` first, or pass --db."
        assert not db.exists()


def test_a_newer_index_is_refused_by_reads_and_writes(index: Path) -> None:
    write(
        index,
        "insert into _sqlite_migrations (migration_set, name, applied_at) values ('imgindex', '999_future.sql', '')",
    )
    before = digest(index)
    for args in every_command(index):
        line = error_line(args)
        assert f"{index} was written by a newer imgindex (schema 999_future.sql is unknown to imgindex" in line
        assert line.endswith("upgrade imgindex with `pip install -U imgindex`.")
        assert digest(index) == before, f"{args[0]} changed the file"


def make_older(db: Path) -> None:
    """As an index written before the window hashes (008) and the schema files after it: their
    changes absent, their records too."""
    write(
        db,
        "drop trigger near_on_update",
        *(f"drop view {name}" for name in VIEWS),
        "alter table images drop column window_hashes",
        "alter table images drop column path_bytes",  # 009_paths.sql
        "alter table scans drop column skipped",
        *(f"alter table images drop column {column}" for column in QUALITY_COLUMNS),  # 010_quality.sql
        *(f"drop table {table}" for table in ("quality_flags", "quality_outliers", "quality_stale")),
        *(f"drop trigger quality_on_{event}" for event in ("insert", "update", "delete")),
        *(f"delete from _sqlite_migrations where name = '{name}'" for name in UNDONE),
    )


def stale_triggers(db: Path) -> list[str]:
    rows = sqlite3.connect(db).execute(
        "select name from sqlite_master where type = 'trigger' and name like 'near_on%' order by name"
    )
    return [r[0] for r in rows]


def test_an_older_index_is_refused_by_reads_until_upgraded(index: Path, tmp_path: Path) -> None:
    make_older(index)
    before = digest(index)
    for args in read_commands(index, tmp_path) + [["serve", "--db", str(index)]]:
        line = error_line(args)
        assert f"{index} was written by an older imgindex (schema {LAST_MIGRATION} not applied yet)" in line
        assert f"`imgindex upgrade --db {index}` brings it up to date" in line
        assert "the next `imgindex scan` or `imgindex watch`" in line
        assert digest(index) == before
    assert invoke("upgrade", "--db", str(index)).output.startswith(f"Upgraded {index}: schema {LAST_MIGRATION} applied")
    assert stale_triggers(index) == sorted(STALE_TRIGGERS)
    assert "train & val: There are 2 duplicates" in invoke("duplicates", "--db", str(index)).output
    again = invoke("upgrade", "--db", str(index)).output
    assert again.startswith(f"Upgraded {index}: schema already current, views re-created")


def test_views_of_another_version_are_refused_by_reads_and_recreated_by_upgrade(index: Path, tmp_path: Path) -> None:
    """Views are derived: reads never re-create them, so views that are not this version's are refused."""
    write(
        index,
        "drop view split_summary",
        "drop view leakage",
        "create view leakage as select 1 as split_a",  # as another version might define it
    )
    before = digest(index)
    for args in read_commands(index, tmp_path):
        line = error_line(args)
        assert f"{index} holds views of another imgindex version (leakage, split_summary)" in line
        assert f"`imgindex upgrade --db {index}` brings it up to date" in line
        assert digest(index) == before and wal_content(index) == b""
    invoke("upgrade", "--db", str(index))
    assert "val" in invoke("sql", "--db", str(index), "select split from split_summary").output
    assert "train" in invoke("sql", "--db", str(index), "select split_a from leakage").output


def test_a_scan_upgrades_an_older_index(index: Path) -> None:
    make_older(index)
    invoke("scan", "--db", str(index), f"train={TRAIN}", f"val={VAL}", "-q")
    assert stale_triggers(index) == sorted(STALE_TRIGGERS)
    assert invoke("sql", "--db", str(index), "select count(*) from images").output.split()[-1] == "20"


def test_an_index_of_the_first_schema_files_only_is_upgraded(tmp_path: Path) -> None:
    """An index from before the extractor column (005): reads refuse it, upgrade adds the column."""
    db = tmp_path / "old.db"
    old = store.migrations()
    conn = sqlite3.connect(db, isolation_level=None)
    database = sqlite_utils.Database(conn)
    old.apply(database, stop_before="005_extractor.sql")
    store.create_views(database)
    conn.close()
    assert "extractor" not in sqlite_utils.Database(db)["images"].columns_dict
    line = error_line(["sql", "--db", str(db), "select 1"])
    assert (
        "older imgindex (schema 005_extractor.sql, 006_stale_triggers.sql, 007_verdicts.sql, 008_windows.sql, "
        "009_paths.sql, 010_quality.sql, 011_verification_v2.sql, 012_reviews.sql, 013_deferred_upkeep.sql, "
        "014_split_stamps.sql not" in line
    )
    invoke("upgrade", "--db", str(db))
    assert invoke("sql", "--db", str(db), "--json", "select count(extractor) n from images").output.strip() == (
        '[\n  {\n    "n": 0\n  }\n]'
    )
    invoke("scan", "--db", str(db), f"val={VAL}", "-q")
    assert "4" in invoke("sql", "--db", str(db), "select count(extractor) from images").output


def test_out_of_date_near_pairs_warn_and_are_brought_up_to_date_by_upgrade(index: Path) -> None:
    """Rows written by another program: reads answer with what is stored, and say so on stderr."""
    write(
        index,
        "insert into images (split, path, rel_path, size, mtime_ns, sha256, dhash, dhash_256, brightness, "
        "mean_r, mean_g, mean_b, std_r, std_g, std_b, extractor) "
        "select 'val', path || '.copy', rel_path || '.copy', size, mtime_ns, sha256, dhash, dhash_256, brightness, "
        "mean_r, mean_g, mean_b, std_r, std_g, std_b, extractor from images "
        "where split = 'val' and rel_path = '000000000036.jpg'",
    )
    before = digest(index)
    warning = (
        f"Warning: near-duplicate pairs in {index} are out of date (images were written since they were computed, "
        f"by another program or a scan still running); `imgindex upgrade --db {index}` or the next `imgindex scan` "
        "brings them up to date.\n"
    )
    for args in (["duplicates", "--json"], ["sql", "select count(*) from images"]):
        result = invoke(*args, "--db", str(index))
        assert result.stderr == warning
        assert digest(index) == before
    doc = invoke("duplicates", "--db", str(index), "--json").stdout
    assert ".copy" not in doc  # the pairs as they were stored
    assert "schema already current" in invoke("upgrade", "--db", str(index)).output
    result = invoke("duplicates", "--db", str(index), "--json")
    assert result.stderr == "" and "000000000036.jpg.copy" in result.stdout


def test_sql_attaches_other_databases_read_only_only(index: Path) -> None:
    other = index.parent / "new.db"
    line = error_line(["sql", "--db", str(index), f"attach '{other}' as other"])
    assert "ATTACH 'file:other.db?mode=ro' AS other" in line
    assert not other.exists()
    error_line(["sql", "--db", str(index), f"vacuum into '{other}'"])
    assert not other.exists()


def test_the_python_api_raises_one_family(tmp_path: Path, other_db: Path, index: Path) -> None:
    with pytest.raises(store.NoIndexError):
        store.open_readonly(tmp_path / "nothing.db")
    with pytest.raises(store.NotAnIndexError):
        store.open_db(other_db)
    with pytest.raises(ReportError, match="not an imgindex index"):
        build_report(other_db, out_dir=tmp_path / "logs")
    (tmp_path / "empty.db").touch()  # an empty file is an empty database: the write open initialises it
    store.open_db(tmp_path / "empty.db").close()
    write(tmp_path / "blank.db", "pragma user_version = 1")  # a SQLite database without tables
    with pytest.raises(store.NotAnIndexError, match="it has no tables"):
        store.open_readonly(tmp_path / "blank.db")
    store.open_db(tmp_path / "blank.db").close()
    assert "images" in table_names(tmp_path / "blank.db")
    db = store.open_readonly(index)
    try:
        assert db.execute("select count(*) from images").fetchone()[0] == 20
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            db.execute("delete from images")
    finally:
        db.close()
    assert all(issubclass(e, store.IndexStateError) for e in (store.NewerIndexError, store.OlderIndexError))


def test_a_new_index_holds_what_sqlite_makes_of_the_schema_files(tmp_path: Path) -> None:
    """The migrations run each schema file statement by statement: the same tables, indexes,
    views and triggers as SQLite's own script runner makes of the files."""
    reference = sqlite3.connect(":memory:")
    for _, sql in store.schema_files():
        reference.executescript(sql)
    store.open_db(tmp_path / "new.db").close()
    made = sqlite3.connect(tmp_path / "new.db")
    query = "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY 1, 2"
    expected = reference.execute(query).fetchall()
    assert {name for _, name, _ in expected} >= {"images", "near_pairs", "verdict_groups", "near_on_insert"}
    ours = {row[:2]: row[2] for row in made.execute(query)}
    assert {row[:2]: row[2] for row in expected}.items() <= ours.items()


def test_a_schema_file_is_split_after_each_complete_statement() -> None:
    script = (
        "CREATE TABLE t (x); -- a note; with a semicolon\n"
        "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN\n"
        "    INSERT INTO t VALUES (1);\n"
        "    DELETE FROM t WHERE x = 2;\n"
        "END;\n"
        "-- the end\n"
    )
    assert store.split_statements(script) == [
        "CREATE TABLE t (x); -- a note; with a semicolon",
        "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN\n    INSERT INTO t VALUES (1);\n"
        "    DELETE FROM t WHERE x = 2;\nEND;",
        "-- the end",
    ]
