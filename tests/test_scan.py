"""`imgindex scan` end to end: counts, incremental re-scans, bad input, misuse."""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, drop_file_read_override, invoke, run_imgindex, sql_rows
from PIL import Image

from imgindex import store
from imgindex.scan import scan, update_files

COCO8 = DATA / "coco8" / "images"


def summary_counts(output: str) -> dict[str, int]:
    """'3 new, 1 changed, ...' -> {'new': 3, 'changed': 1, ...}"""
    line = output.strip().splitlines()[-1]
    parts = line.split(" in ")[0].split(", ")
    return {p.split(" ")[1]: int(p.split(" ")[0]) for p in parts}


def make_image(path: Path, seed: int, size: tuple[int, int] = (96, 64)) -> Path:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    Image.fromarray(arr).resize(size, Image.Resampling.BILINEAR).save(path)
    return path


def test_scan_two_splits_of_real_images(db: Path) -> None:
    result = invoke("scan", "--db", str(db), f"train={COCO8 / 'train'}", f"val={COCO8 / 'val'}")
    assert summary_counts(result.output) == {"new": 8, "changed": 0, "unchanged": 0, "removed": 0, "errors": 0}
    rows = sql_rows(db, "select split, count(*) n, sum(width > 0) w from images group by split")
    assert rows == [{"split": "train", "n": 4, "w": 4}, {"split": "val", "n": 4, "w": 4}]
    row = sql_rows(db, "select * from images where rel_path = '000000000009.jpg'")[0]
    assert row["path"] == str((COCO8 / "train" / "000000000009.jpg").resolve())
    assert (row["format"], row["mode"], row["width"], row["height"]) == ("JPEG", "RGB", 640, 480)
    assert len(row["dhash"]) == 16 and len(row["sha256"]) == 64 and row["error"] is None


def test_bare_folder_is_named_after_itself(db: Path) -> None:
    invoke("scan", "--db", str(db), str(COCO8 / "val"))
    assert sql_rows(db, "select distinct split from images") == [{"split": "val"}]


def test_resume_scan_touches_only_the_delta(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "train"
    shutil.copytree(COCO8 / "train", folder)
    invoke("scan", "--db", str(db), f"train={folder}", "-q")
    before = {r["path"]: r for r in sql_rows(db, "select id, path, scan_id, sha256 from images")}

    (folder / "000000000009.jpg").unlink()  # delete one
    changed = folder / "000000000025.jpg"  # change one
    Image.open(changed).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(changed, quality=80)
    (folder / "sub").mkdir()
    make_image(folder / "sub" / "new.png", 1)  # add one in a subfolder

    result = invoke("scan", "--db", str(db), f"train={folder}", "-q")
    assert summary_counts(result.output) == {"new": 1, "changed": 1, "unchanged": 2, "removed": 1, "errors": 0}
    after = {r["path"]: r for r in sql_rows(db, "select id, path, scan_id, sha256 from images")}
    assert str(folder / "000000000009.jpg") not in after
    assert after[str(changed)]["sha256"] != before[str(changed)]["sha256"]
    assert after[str(changed)]["id"] == before[str(changed)]["id"]  # ids are stable
    untouched = str(folder / "000000000030.jpg")
    assert after[untouched]["scan_id"] == before[untouched]["scan_id"]  # not re-read
    assert sql_rows(db, "select rel_path from images where rel_path like 'sub/%'") == [{"rel_path": "sub/new.png"}]

    again = invoke("scan", "--db", str(db), f"train={folder}", "-q")
    assert summary_counts(again.output)["unchanged"] == 4


def test_scanning_one_split_never_touches_another(db: Path, tmp_path: Path) -> None:
    invoke("scan", "--db", str(db), f"train={COCO8 / 'train'}", f"val={COCO8 / 'val'}")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("scan", "--db", str(db), f"val={empty}")
    assert summary_counts(result.output)["removed"] == 4
    assert sql_rows(db, "select split, count(*) n from images group by split") == [{"split": "train", "n": 4}]
    assert sql_rows(db, "select name, root from splits order by name") == [
        {"name": "train", "root": str((COCO8 / "train").resolve())},
        {"name": "val", "root": str(empty.resolve())},
    ]


def test_bad_files_are_recorded_and_the_scan_goes_on(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(DATA / "imagededup", folder)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "README.md").write_text("a dataset readme")  # not an image, not an error
    (folder / "data.yaml").write_text("names: [a]")
    (folder / "labels.csv").write_text("a,b\n")
    result = invoke("scan", "--db", str(db), f"mixed={folder}")
    counts = summary_counts(result.output)
    assert counts["new"] == 13 and counts["errors"] == 2
    errors = {r["rel_path"]: r["error"] for r in sql_rows(db, "select rel_path, error from unreadable")}
    assert set(errors) == {"empty.jpg", "ukbench09268_corrupt.jpg"}
    assert (
        errors["empty.jpg"].startswith("empty file (0 bytes)") and "not an image" in errors["ukbench09268_corrupt.jpg"]
    )


def test_failed_files_stay_unopened_until_changed_or_retried(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    valid = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(valid, "PNG")
    size = valid.getbuffer().nbytes + 100
    bad = folder / "later.png"
    bad.write_bytes(b"\0" * size)  # not an image
    invoke("scan", "--db", str(db), f"f={folder}")
    stamp = bad.stat()
    bad.write_bytes(valid.getvalue() + b"\0" * 100)  # fixed in place: same size, and the mtime put back
    os.utime(bad, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))

    again = invoke("scan", "--db", str(db), f"f={folder}")
    assert summary_counts(again.output)["unchanged"] == 1  # an unchanged file is not opened again
    assert sql_rows(db, "select error is not null as failed from images") == [{"failed": 1}]

    retried = invoke("scan", "--db", str(db), "--retry-errors", f"f={folder}")
    assert summary_counts(retried.output) == {"new": 0, "changed": 1, "unchanged": 0, "removed": 0, "errors": 0}
    assert sql_rows(db, "select error, width from images") == [{"error": None, "width": 40}]


def test_copies_of_one_image_changed_together(db: Path, tmp_path: Path) -> None:
    """Both copies of a duplicate re-encoded before one re-scan: they land in one batch, both
    marking the same dHash for the near-pair refresh, and stay a duplicate group."""
    folder = tmp_path / "train"
    folder.mkdir()
    source = COCO8 / "train" / "000000000009.jpg"
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(source, folder / name)
    invoke("scan", "--db", str(db), f"train={folder}", "-q")
    for name in ("a.jpg", "b.jpg"):
        Image.open(source).save(folder / name, quality=90)
    again = invoke("scan", "--db", str(db), f"train={folder}", "-q")
    assert summary_counts(again.output) == {"new": 0, "changed": 2, "unchanged": 0, "removed": 0, "errors": 0}
    assert sql_rows(db, "select kind from near_pairs") == [{"kind": "byte-identical"}]


def test_rows_of_an_older_extraction_are_extracted_again(db: Path, tmp_path: Path) -> None:
    """An index written by an earlier version (other hashes) is brought up to date by the next
    scan, so that it never compares hashes computed two ways; after that nothing is re-read."""
    folder = tmp_path / "train"
    shutil.copytree(COCO8 / "train", folder)
    invoke("scan", "--db", str(db), f"train={folder}", "-q")
    current = sql_rows(db, "select path, dhash, extractor from images order by path")
    conn = sqlite3.connect(db)
    with conn:  # as an earlier version left it: another hash in one row, no version in another
        conn.execute(
            "UPDATE images SET dhash = '0000000000000000', extractor = extractor - 1 WHERE rel_path = ?",
            ["000000000009.jpg"],
        )
        conn.execute("UPDATE images SET extractor = NULL WHERE rel_path = '000000000025.jpg'")
    conn.close()

    again = invoke("scan", "--db", str(db), f"train={folder}", "-q")
    assert summary_counts(again.output) == {"new": 0, "changed": 2, "unchanged": 2, "removed": 0, "errors": 0}
    assert sql_rows(db, "select path, dhash, extractor from images order by path") == current
    third = invoke("scan", "--db", str(db), f"train={folder}", "-q")
    assert summary_counts(third.output)["unchanged"] == 4


def test_unicode_names_symlinks_and_link_loops(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "données"
    folder.mkdir()
    make_image(folder / "café ☕.png", 1)
    outside = make_image(tmp_path / "outside.png", 2)
    (folder / "linked.png").symlink_to(outside)
    (folder / "loop").symlink_to(folder)  # a folder link back to the root
    (folder / "dangling.png").symlink_to(tmp_path / "missing.png")
    result = invoke("scan", "--db", str(db), f"d={folder}")
    assert summary_counts(result.output)["new"] == 2
    assert summary_counts(result.output)["skipped"] == 1  # the dangling link
    assert (
        f"Skipped 1 link that leads nowhere (dangling, or a loop of links): {folder / 'dangling.png'}" in result.output
    )
    names = {r["rel_path"] for r in sql_rows(db, "select rel_path from images")}
    assert names == {"café ☕.png", "linked.png"}


@pytest.mark.skipif(sys.platform != "linux", reason="Linux permissions and capabilities")
def test_unreadable_file_is_recorded(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    make_image(folder / "ok.png", 1)
    make_image(folder / "secret.png", 2).chmod(0)
    db = tmp_path / "index.db"
    as_user = {"preexec_fn": drop_file_read_override} if os.geteuid() == 0 else {}
    proc = run_imgindex("scan", "--db", str(db), f"p={folder}", **as_user)
    assert proc.returncode == 0, proc.stderr
    assert summary_counts(proc.stdout)["errors"] == 1
    con = sqlite3.connect(db)
    assert con.execute("select error from images where rel_path = 'secret.png'").fetchone() == (
        "permission denied: the file cannot be read",
    )


@pytest.mark.skipif(sys.platform != "linux", reason="Linux permissions and capabilities")
def test_a_folder_that_cannot_be_read_is_named_and_its_images_are_not_removed(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    for sub, seed in (("a", 1), ("b", 2), ("b", 3)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        make_image(folder / sub / f"{seed}.png", seed)
    db = tmp_path / "index.db"
    as_user = {"preexec_fn": drop_file_read_override} if os.geteuid() == 0 else {}
    assert summary_counts(run_imgindex("scan", "--db", str(db), f"p={folder}", **as_user).stdout)["new"] == 3
    (folder / "b").chmod(0)
    try:
        locked = run_imgindex("scan", "--db", str(db), f"p={folder}", **as_user)
        make_image(folder / "a" / "4.png", 4)
        more = run_imgindex("scan", "--db", str(db), f"p={folder}", **as_user)
    finally:
        (folder / "b").chmod(0o755)
    assert locked.returncode == 0, locked.stderr
    assert summary_counts(locked.stdout) == {"new": 0, "changed": 0, "unchanged": 1, "removed": 0, "errors": 0}
    assert "Could not read 1 folder(s): their images already indexed are kept" in locked.stderr
    assert str(folder / "b") in locked.stderr
    assert summary_counts(more.stdout)["removed"] == 0  # a later change elsewhere removes nothing either
    readable = run_imgindex("scan", "--db", str(db), f"p={folder}", **as_user)
    assert summary_counts(readable.stdout) == {"new": 0, "changed": 0, "unchanged": 4, "removed": 0, "errors": 0}
    assert "Could not read" not in readable.stderr
    assert len(sql_rows(db, "select id from images")) == 4
    folder.chmod(0)
    try:
        root_locked = run_imgindex("scan", "--db", str(db), f"p={folder}", **as_user)
    finally:
        folder.chmod(0o755)
    assert root_locked.returncode == 2 and "cannot be read (permission denied)" in root_locked.stderr
    assert "Traceback" not in root_locked.stderr and len(sql_rows(db, "select id from images")) == 4


def test_misuse_gets_a_message_and_nonzero_exit(db: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [
        ([], "Give at least one folder"),
        ([str(tmp_path / "nope")], "does not exist"),
        (["train="], "give the folder after '='"),
        (["=data"], "split name"),
        (["bad name=" + str(tmp_path)], "split name"),
        ([f"train={a_file}"], "is a file, not a folder"),
    ]
    for args, message in cases:
        result = invoke("scan", "--db", str(db), *args, ok=False)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    assert not db.exists()  # misuse writes nothing


def test_a_rescan_says_how_many_files_stay_unreadable(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    make_image(folder / "ok.png", 1)
    (folder / "broken.jpg").write_bytes(b"not a picture")
    first = invoke("scan", "--db", str(db), f"t={folder}").output
    assert summary_counts(first)["errors"] == 1 and "earlier scans" not in first
    again = invoke("scan", "--db", str(db), f"t={folder}").output
    assert summary_counts(again)["errors"] == 0
    assert "; 1 unreadable files in these splits, 1 from earlier scans (--retry-errors reads them again)" in again


def test_an_index_path_in_no_folder_gets_a_message(tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for db, message in ((tmp_path / "none" / "x.db", "does not exist"), (a_file / "x.db", "is a file")):
        for command in ("scan", "watch"):
            proc = run_imgindex(command, "--db", str(db), str(COCO8 / "val"))
            assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
            assert f"Cannot write {db}: the folder {db.parent} {message}; give --db a path" in proc.stderr
    assert not (tmp_path / "none").exists()


def test_commands_on_a_missing_index_say_what_to_do(tmp_path: Path) -> None:
    for command in (["duplicates"], ["sql", "select 1"]):
        result = invoke(*command, "--db", str(tmp_path / "none.db"), ok=False)
        assert result.exit_code == 1 and "imgindex scan" in result.output


def test_database_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGINDEX_DB", str(tmp_path / "env.db"))
    invoke("scan", str(COCO8 / "val"))
    assert (tmp_path / "env.db").exists()


def test_subprocess_scan_with_workers_matches_single_process(tmp_path: Path) -> None:
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    folder = DATA / "imagededup"
    assert run_imgindex("scan", "--db", str(one), "--workers", "1", str(folder)).returncode == 0
    proc = run_imgindex("scan", "--db", str(two), "--workers", "2", "-q", str(folder))
    assert proc.returncode == 0 and proc.stderr == ""
    query = "select path, sha256, dhash, dhash_256, brightness, error from images order by path"
    assert sqlite3.connect(one).execute(query).fetchall() == sqlite3.connect(two).execute(query).fetchall()


def test_progress_bar_on_a_terminal_and_not_with_quiet(tmp_path: Path) -> None:
    import pty

    def stderr_on_a_terminal(*extra: str) -> str:
        primary, secondary = pty.openpty()
        proc = run_imgindex(
            "scan",
            "--db",
            str(tmp_path / f"t{len(extra)}.db"),
            *extra,
            str(DATA / "imagededup"),
            stderr=secondary,
            stdout=subprocess.PIPE,
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                data = os.read(primary, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        os.close(primary)
        assert proc.returncode == 0
        return b"".join(chunks).decode(errors="replace")

    shown = stderr_on_a_terminal()
    assert "Indexing" in shown and "files/s" in shown and "12/12" in shown
    assert stderr_on_a_terminal("-q") == ""


def test_an_unchanged_split_is_known_by_its_walk_without_reading_its_stamps(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm re-scan of a split as the last scan left it compares one digest, not every stored
    stamp; a change on disk brings back the file-by-file comparison."""
    folder = tmp_path / "train"
    shutil.copytree(COCO8 / "train", folder)
    scan(db, {"train": [folder]}, workers=1)
    reads: list[str] = []
    real = store.stored_stamps
    monkeypatch.setattr(store, "stored_stamps", lambda conn, split, *a: reads.append(split) or real(conn, split, *a))
    again = scan(db, {"train": [folder]}, workers=1)
    assert (again.unchanged, again.new, again.changed, reads) == (4, 0, 0, [])
    make_image(folder / "extra.png", 1)
    third = scan(db, {"train": [folder]}, workers=1)
    assert (third.unchanged, third.new, reads) == (4, 1, ["train"])
    fourth = scan(db, {"train": [folder]}, workers=1)
    assert (fourth.unchanged, fourth.new, reads) == (5, 0, ["train"])


def test_rows_written_since_the_last_scan_are_compared_file_by_file(db: Path, tmp_path: Path) -> None:
    """The walk is as the last scan saw it, but a file changed and changed back in between, and the
    watcher stored the changed version meanwhile: the scan must see that the row no longer matches
    the file, and read it again."""
    folder = tmp_path / "train"
    shutil.copytree(COCO8 / "train", folder)
    invoke("scan", "--db", str(db), f"train={folder}", "-q")
    target = folder / "000000000025.jpg"
    original, stat = target.read_bytes(), target.stat()
    first = sql_rows(db, "select dhash, mtime_ns from images where rel_path = '000000000025.jpg'")[0]
    make_image(target, 7, (640, 480))  # changed, and stored by the watcher's path
    conn = store.open_db(db)
    try:
        update_files(conn, {"train": [(str(target), target.name)]}, store.start_scan(conn, {}))
    finally:
        conn.close()
    assert sql_rows(db, "select dhash from images where rel_path = '000000000025.jpg'")[0]["dhash"] != first["dhash"]
    target.write_bytes(original)  # changed back: the same bytes, size and mtime as at the last scan
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = invoke("scan", "--db", str(db), f"train={folder}", "-q")
    assert summary_counts(again.output)["changed"] == 1
    assert sql_rows(db, "select dhash, mtime_ns from images where rel_path = '000000000025.jpg'")[0] == first
