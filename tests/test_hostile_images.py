"""A hostile corpus of image-side inputs, scanned with the real command line: every file ends as a
row, a row with an error, or a counted skip, in bounded time, and the scan exits 0.

The corpus is generated here with Pillow and os calls: a name that is not UTF-8, link loops and
dangling links (at the top and deeper), a FIFO, a character device and a socket named like
images, a zero-byte file, a truncated JPEG, a folder named x.jpg, an unreadable file (not as
root), a PNG whose header claims 40000x40000 pixels, an image whose path is longer than PATH_MAX,
and a file that vanishes during the scan.
"""

from __future__ import annotations

import io
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from conftest import invoke, run_imgindex, sql_rows
from PIL import Image

from imgindex import Index
from imgindex.extract import MAX_PIXELS, extract, open_regular
from imgindex.walk import PATH_MAX, stored_text

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux file kinds, byte names and PATH_MAX")

SCAN_SECONDS = 120  # a hostile corpus is scanned in seconds; a blocked open would never end
BAD_NAME = b"bad\xff.jpg"  # not UTF-8


def jpeg_bytes(colour: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").point(lambda v: v // 2).save(buf, "JPEG")
    im = Image.open(buf).convert("RGB")
    im.paste(colour, (0, 0, size[0] // 3, size[1] // 3))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels and holds none."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def deep_image(root: Path, data: bytes) -> bytes:
    """Write an image below nested folders so that its path is longer than PATH_MAX (made relative
    to folder descriptors: no call sees the whole path); returns the path's bytes."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    path = os.fsencode(root)
    try:
        while len(path) < PATH_MAX + 100:
            name = b"d" * 200
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, path = inner, path + b"/" + name
        out = os.open(b"deep.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, data)
        os.close(out)
    finally:
        os.close(fd)
    return path + b"/deep.jpg"


# What each file must become: ("row", None), ("error", a part of the message) or ("skip", None).
Expected = dict[str, tuple[str, str | None]]


@pytest.fixture
def corpus(tmp_path: Path) -> Iterator[tuple[Path, Expected]]:
    """The hostile split folder and what each of its entries must become (keys: stored paths)."""
    top = tmp_path / "train"
    (top / "sub" / "deeper").mkdir(parents=True)
    good = jpeg_bytes()
    expected: Expected = {}

    def expect(path: Path | bytes, outcome: str, detail: str | None = None) -> None:
        expected[stored_text(os.fsdecode(path))] = (outcome, detail)

    (top / "ok.jpg").write_bytes(good)
    expect(top / "ok.jpg", "row")
    bad = os.fsencode(top) + b"/" + BAD_NAME
    Path(os.fsdecode(bad)).write_bytes(jpeg_bytes((40, 200, 40)))
    expect(bad, "row")
    (top / "sub" / "deeper" / "fine.png").write_bytes(png_bytes())
    expect(top / "sub" / "deeper" / "fine.png", "row")
    for folder in (top, top / "sub" / "deeper"):  # link loops and dangling links, at the top and deeper
        os.symlink("x2.jpg", folder / "x1.jpg")
        os.symlink("x1.jpg", folder / "x2.jpg")
        os.symlink("nowhere.jpg", folder / "dangling.jpg")
        for name in ("x1.jpg", "x2.jpg", "dangling.jpg"):
            expect(folder / name, "skip")
    os.symlink("gone", top / "sub" / "gone")  # a folder link leading nowhere
    expect(top / "sub" / "gone", "skip")
    os.symlink("..", top / "sub" / "up")  # a folder link back up: walked once, not a loop forever
    os.mkfifo(top / "fifo.jpg")
    expect(top / "fifo.jpg", "error", "a FIFO")
    os.symlink("/dev/zero", top / "zero.jpg")  # reading it would never end
    expect(top / "zero.jpg", "error", "a character device")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cwd = os.getcwd()
    os.chdir(top)  # a socket's path is limited to about 100 bytes: bind it by a relative name
    try:
        server.bind("sock.png")
    finally:
        os.chdir(cwd)
    expect(top / "sock.png", "error", "a socket")
    (top / "empty.jpg").write_bytes(b"")
    expect(top / "empty.jpg", "error", "empty file (0 bytes): nothing to decode")
    (top / "truncated.jpg").write_bytes(good[: len(good) // 2])
    expect(top / "truncated.jpg", "error", "truncated")
    (top / "folder.jpg").mkdir()  # a folder named like an image is walked as a folder
    (top / "folder.jpg" / "inner.jpg").write_bytes(jpeg_bytes((10, 10, 220)))
    expect(top / "folder.jpg" / "inner.jpg", "row")
    (top / "bomb.png").write_bytes(png_header_only(40000, 40000))
    expect(top / "bomb.png", "error", "--max-pixels")
    if os.geteuid() != 0:  # root reads any file
        (top / "secret.jpg").write_bytes(good)
        (top / "secret.jpg").chmod(0)
        expect(top / "secret.jpg", "error", "permission denied")
    expect(deep_image(top / "sub", good), "error", "path too long")
    try:
        yield top, expected
    finally:
        server.close()
        (top / "secret.jpg").unlink(missing_ok=True)


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def within(seconds: float, call: Callable[[], Result]) -> Result:
    """The result of ``call``, run in a thread; fails the test when it does not end in time."""
    results: list[Result] = []
    thread = threading.Thread(target=lambda: results.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the scan did not end within {seconds} s"
    return results[0]


def check_outcomes(db: Path, expected: Expected, output: str) -> None:
    """Every expected row is there with its error (or none), every skip is counted and named, and
    nothing else was indexed."""
    rows = {r["path"]: r for r in sql_rows(db, "select path, error, path_bytes is not null raw from images")}
    want_rows = {path: detail for path, (kind, detail) in expected.items() if kind != "skip"}
    assert set(rows) == set(want_rows)
    for path, detail in want_rows.items():
        if detail is None:
            assert rows[path]["error"] is None, (path, rows[path]["error"])
        else:
            assert detail in (rows[path]["error"] or ""), (path, rows[path]["error"])
    skips = sorted(path for path, (kind, _) in expected.items() if kind == "skip")
    assert f", {len(skips)} skipped in " in output
    assert f"Skipped {len(skips)} links that lead nowhere" in output
    for path in skips[:5]:
        assert path in output


def test_every_hostile_file_gets_a_row_an_error_or_a_counted_skip(corpus: tuple[Path, Expected], db: Path) -> None:
    top, expected = corpus
    result = within(SCAN_SECONDS, lambda: invoke("scan", "--db", str(db), "--workers", "2", f"train={top}"))
    assert result.exit_code == 0
    check_outcomes(db, expected, result.output)
    again = within(SCAN_SECONDS, lambda: invoke("scan", "--db", str(db), f"train={top}"))
    rows = len(expected) - sum(kind == "skip" for kind, _ in expected.values())
    assert f"0 new, 0 changed, {rows} unchanged, 0 removed, 0 errors" in again.output


def test_the_hostile_corpus_in_a_real_process(corpus: tuple[Path, Expected], tmp_path: Path) -> None:
    top, expected = corpus
    db = tmp_path / "real.db"
    proc = run_imgindex("scan", "--db", str(db), "-q", f"train={top}", timeout=SCAN_SECONDS)
    assert proc.returncode == 0, proc.stderr
    check_outcomes(db, expected, proc.stdout + proc.stderr)


def test_a_name_that_is_not_utf8_is_stored_escaped_with_its_bytes_and_stays_openable(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "names"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/" + BAD_NAME
    Path(os.fsdecode(raw)).write_bytes(jpeg_bytes())
    (folder / "copy.jpg").write_bytes(jpeg_bytes())  # the same bytes: a duplicate pair
    invoke("scan", "--db", str(db), f"n={folder}")
    (row,) = sql_rows(db, "select path, rel_path, hex(path_bytes) raw, error from images where path_bytes is not null")
    assert row["path"] == f"{folder}/bad\\xff.jpg" and row["rel_path"] == "bad\\xff.jpg"
    assert bytes.fromhex(row["raw"]) == raw and row["error"] is None
    assert extract(os.fsdecode(bytes.fromhex(row["raw"])))["error"] is None  # openable from what is stored
    assert sql_rows(db, "select count(*) n from images where path_bytes is null")[0]["n"] == 1
    shown = (
        invoke("duplicates", "--db", str(db)).output + invoke("sql", "--db", str(db), "select path from images").output
    )
    assert "bad\\xff.jpg" in shown  # printed escaped, never as a surrogate
    assert "0 new, 0 changed, 2 unchanged" in invoke("scan", "--db", str(db), f"n={folder}").output


def test_a_thousand_files_and_one_bad_name_are_all_indexed_and_stay_unchanged(db: Path, tmp_path: Path) -> None:
    """The probe's case: a batch holding the bad name failed, so every scan stopped at 256 files."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(1000):
        im = Image.new("RGB", (8, 8), (i % 256, (i // 256) * 60, 90))
        im.putpixel((i % 8, (i // 8) % 8), (255, 255, 255))
        im.save(folder / f"{i:04d}.png")
    Path(os.fsdecode(os.fsencode(folder) + b"/0500\xfe.png")).write_bytes((folder / "0001.png").read_bytes())
    assert "1001 new" in invoke("scan", "--db", str(db), "-q", f"m={folder}").output
    assert "0 new, 0 changed, 1001 unchanged" in invoke("scan", "--db", str(db), "-q", f"m={folder}").output


def test_a_split_folder_whose_name_is_not_utf8(db: Path, tmp_path: Path) -> None:
    folder = os.fsdecode(os.fsencode(tmp_path) + b"/sp\xfe")
    os.mkdir(folder)
    Path(folder, "a.jpg").write_bytes(jpeg_bytes())
    invoke("scan", "--db", str(db), folder)
    invoke("scan", "--db", str(db), f"val={folder}")
    rows = sql_rows(db, "select split, path, rel_path from images order by split")
    assert [(r["split"], r["rel_path"]) for r in rows] == [("sp\\xfe", "a.jpg"), ("val", "a.jpg")]
    assert rows[0]["path"] == f"{tmp_path}/sp\\xfe/a.jpg"


def test_a_file_that_vanishes_during_the_scan_is_recorded(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "v"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (folder / name).write_bytes(jpeg_bytes())

    def remove_the_last(done: int, total: int) -> None:
        if done == 1:
            (folder / "c.jpg").unlink()

    with Index(db) as index:
        summary = index.scan({"v": folder}, executor="inline", on_progress=remove_the_last)
    assert summary.errors == 1
    rows = {r["rel_path"]: r["error"] for r in sql_rows(db, "select rel_path, error from images")}
    assert rows == {"a.jpg": None, "b.jpg": None, "c.jpg": "file vanished during the scan"}


def test_a_fifo_is_never_opened_even_when_it_replaces_a_file_after_the_stat(tmp_path: Path) -> None:
    fifo = tmp_path / "late.jpg"
    os.mkfifo(fifo)
    errors: list[str] = []

    def read_it() -> None:
        errors.append(extract(str(fifo))["error"])
        try:  # the second guard alone: open without blocking, then fstat
            open_regular(str(fifo)).close()
        except OSError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=read_it, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "opening a FIFO blocked"
    assert errors == ["not a regular file but a FIFO (named pipe): it is never opened"] * 2


def test_the_pixel_budget_is_judged_after_the_jpeg_draft(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    Image.linear_gradient("L").resize((2400, 2400)).save(folder / "wide.jpg")  # drafts to 300x300
    Image.linear_gradient("L").resize((400, 400)).save(folder / "wide.png")  # 160,000 pixels
    invoke("scan", "--db", str(db), "--max-pixels", "100000", f"b={folder}")
    rows = {r["rel_path"]: r for r in sql_rows(db, "select rel_path, width, error from images")}
    assert rows["wide.jpg"]["error"] is None and rows["wide.jpg"]["width"] == 2400
    error = rows["wide.png"]["error"]
    assert "400x400 = 160,000 pixels, over the budget of 100,000; raise it with --max-pixels" in error
    assert rows["wide.png"]["width"] == 400  # the header is still recorded
    invoke("scan", "--db", str(db), "--retry-errors", f"b={folder}")  # the default budget decodes it
    assert sql_rows(db, "select count(*) n from images where error is null")[0]["n"] == 2


def test_max_pixels_reaches_the_api_and_watch(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    Image.linear_gradient("L").resize((400, 400)).save(folder / "a.png")
    with Index(db) as index:
        summary = index.scan({"w": folder}, max_pixels=1000, executor="inline")
        assert summary.errors == 1
        with pytest.raises(ValueError, match="max_pixels"):
            from imgindex.executors import Inline

            index.scan({"w": folder}, max_pixels=1000, executor=Inline())
    assert "--max-pixels" in invoke("watch", "--help").output
    assert "--max-pixels INTEGER RANGE" in invoke("scan", "--help").output
    assert MAX_PIXELS == Image.MAX_IMAGE_PIXELS  # Pillow's default, and Pillow's own setting is left as it was


def test_a_legal_15000_pixel_jpeg_is_indexed_not_called_a_bomb(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "huge"
    folder.mkdir()
    im = Image.new("L", (15000, 15000), 128)  # 225 MB while it is written
    im.paste(255, (0, 0, 7500, 7500))
    im.save(folder / "huge.jpg", quality=75)
    del im
    invoke("scan", "--db", str(db), "--workers", "1", f"h={folder}")
    (row,) = sql_rows(db, "select width, height, error, dhash from images")
    assert (row["width"], row["height"], row["error"]) == (15000, 15000, None)
    assert row["dhash"] is not None


def test_label_files_and_class_folders_whose_names_are_not_utf8(db: Path, tmp_path: Path) -> None:
    yolo = os.fsencode(tmp_path / "yolo")
    os.makedirs(yolo + b"/images/train")
    os.makedirs(yolo + b"/labels/train")
    for stem in (b"ok", b"b\xff"):
        Path(os.fsdecode(yolo + b"/images/train/" + stem + b".jpg")).write_bytes(jpeg_bytes())
        Path(os.fsdecode(yolo + b"/labels/train/" + stem + b".txt")).write_text("0 0.5 0.5 0.2 0.2\n")
    classes = os.fsencode(tmp_path / "classes")
    for name, colour in ((b"cat", (200, 0, 0)), (b"d\xf6g", (0, 0, 200))):
        os.makedirs(classes + b"/" + name)
        Path(os.fsdecode(classes + b"/" + name + b"/1.jpg")).write_bytes(jpeg_bytes(colour))
    for _ in range(2):  # the second scan finds everything unchanged
        out = invoke("scan", "--db", str(db), f"train={os.fsdecode(yolo)}/images/train", f"c={os.fsdecode(classes)}")
    assert "0 new, 0 changed, 4 unchanged" in out.output and "0 files read" in out.output
    rows = sql_rows(db, "select split, class_name, image_path from labels order by split, image_path")
    tail = [(r["split"], r["class_name"], r["image_path"].rsplit("/", 2)[-2:]) for r in rows]
    assert tail == [
        ("c", "cat", ["cat", "1.jpg"]),
        ("c", "d\\xf6g", ["d\\xf6g", "1.jpg"]),
        ("train", None, ["train", "b\\xff.jpg"]),
        ("train", None, ["train", "ok.jpg"]),
    ]
    assert not sql_rows(db, "select * from label_problems where kind != 'unnamed_class'")


def test_watch_indexes_byte_names_and_fifos_and_follows_a_folder_move(tmp_path: Path) -> None:
    from imgindex.watch import Watcher

    top, db = tmp_path / "w", tmp_path / "watch.db"
    top.mkdir()
    watcher = Watcher(db, {"w": [top]}, workers=1, max_wait=0.5, settle=0.2)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        assert watcher.ready.wait(30), "the initial scan did not finish"
        Path(os.fsdecode(os.fsencode(top) + b"/b\xff.jpg")).write_bytes(jpeg_bytes())
        os.mkfifo(top / "pipe.jpg")
        outside = tmp_path / "incoming"
        outside.mkdir()
        Path(os.fsdecode(os.fsencode(outside) + b"/c\xfe.jpg")).write_bytes(jpeg_bytes((0, 90, 0)))
        outside.rename(top / "moved")

        def current() -> dict[str, str | None]:
            found = sql_rows(db, "select rel_path, error from images") if db.exists() else []
            return {r["rel_path"]: r["error"] for r in found}

        want = {"b\\xff.jpg": None, "moved/c\\xfe.jpg": None}
        deadline = 20.0
        while current().keys() != {*want, "pipe.jpg"} and deadline > 0:
            deadline -= 0.1
            threading.Event().wait(0.1)
        rows = current()
        assert {k: rows.get(k) for k in want} == want
        assert "a FIFO" in (rows.get("pipe.jpg") or "")
        (top / "moved").rename(tmp_path / "away")  # the escaped rows leave with their folder
        while current().keys() != {*want, "pipe.jpg"} - {"moved/c\\xfe.jpg"} and deadline > 0:
            deadline -= 0.1
            threading.Event().wait(0.1)
        assert set(current()) == {"b\\xff.jpg", "pipe.jpg"}
    finally:
        watcher.stop.set()
        thread.join(20)
    assert not thread.is_alive()


def test_links_leading_out_of_the_split_are_indexed_and_named(tmp_path: Path) -> None:
    """A link to an image outside the split's folders, and a linked folder leading outside, are
    indexed, and the scan names them: `imgindex serve` will not send their files. A link that
    stays inside is not named."""
    outside, split = tmp_path / "outside", tmp_path / "train"
    (outside / "folder").mkdir(parents=True)
    split.mkdir()
    Image.new("RGB", (32, 24), "red").save(outside / "secret.jpg")
    Image.new("RGB", (32, 24), "blue").save(outside / "folder" / "inner.jpg")
    Image.new("RGB", (32, 24), "green").save(split / "photo.jpg")
    (split / "out.jpg").symlink_to(outside / "secret.jpg")
    (split / "linked").symlink_to(outside / "folder", target_is_directory=True)
    (split / "alias.jpg").symlink_to("photo.jpg")
    db = tmp_path / "links.db"
    result = invoke("scan", "--db", str(db), "-q", f"train={split}")
    assert len(sql_rows(db, "select path from images where error is null")) == 4
    line = next(x for x in result.stderr.splitlines() if "lead out of their split's folders" in x)
    assert line.startswith("2 link(s)")
    assert str(split / "out.jpg") in line and str(split / "linked") in line and "alias.jpg" not in line
