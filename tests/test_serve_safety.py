"""`imgindex serve` serves the dataset and nothing else, started for real (uvicorn) and asked over
HTTP: no file outside the scanned folders (links to /etc/passwd, linked folders), thumbnails of
huge images within a pixel budget, any file name as a download, and Datasette's pages about the
server's internals off unless --debug-pages."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from conftest import DATA, ROOT, free_port, wait_http
from datasette.app import Datasette
from PIL import Image

from imgindex.scan import scan
from imgindex.serve.files import content_disposition
from imgindex.serve.plugin import is_debug_page

JPEG = DATA / "coco8" / "images" / "train" / "000000000009.jpg"
OTHER_JPEG = DATA / "coco8" / "images" / "train" / "000000000030.jpg"
PASSWD = Path("/etc/passwd")
EMOJI_NAME = "cat \U0001f431 caf\u00e9.ppm"  # a valid PPM: browsers do not show it, so it is a download
CRLF_NAME = "bad\r\nSet-Cookie: x=1.jpg"  # not an image: a download
NOT_UTF8_NAME = b"/caf\xe9.jpg"  # Latin-1 bytes: indexed under an escaped name, served from its bytes
BIG_SIDE = 6000  # 36 million pixels: above the default thumbnail budget, a flat PNG of 120 KB


@dataclass
class Served:
    base: str
    db: Path
    train: Path
    outside: Path

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(self.base + path, timeout=60, **kwargs)  # type: ignore[arg-type]

    def image_id(self, path: Path) -> int:
        with sqlite3.connect(self.db) as conn:
            row = conn.execute("select id from images where path = ?", [str(path)]).fetchone()
        assert row is not None, path
        return int(row[0])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """train: real JPEGs, a link inside the folder, links leading out of it (to /etc/passwd, to a
    folder outside), awkward file names and a huge flat PNG."""
    root = tmp_path_factory.mktemp("served")
    train, outside = root / "train", root / "outside"
    train.mkdir()
    outside.mkdir()
    shutil.copy(JPEG, train / "photo.jpg")
    shutil.copy(OTHER_JPEG, train / "replaced.jpg")
    (train / "alias.jpg").symlink_to("photo.jpg")  # a link that stays inside: served
    (train / "x.jpg").symlink_to(PASSWD)
    shutil.copy(OTHER_JPEG, outside / "secret.jpg")
    (train / "linked").symlink_to(outside, target_is_directory=True)
    Image.new("RGB", (4, 3), "red").save(train / EMOJI_NAME)
    (train / CRLF_NAME).write_bytes(b"not an image")
    Path(os.fsdecode(bytes(train) + NOT_UTF8_NAME)).write_bytes(JPEG.read_bytes())
    Image.new("RGB", (BIG_SIDE, BIG_SIDE), (200, 120, 40)).save(train / "big.png")
    db = root / "index.db"
    scan(db, {"train": [train]}, workers=1)
    return db, train, outside


def start_server(db: Path, *options: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "imgindex", "serve", "--db", str(db), "--port", str(port), *options]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/")
    return proc, base


def stop_server(proc: subprocess.Popen[bytes]) -> bytes:
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    return stderr


@pytest.fixture(scope="module")
def served(dataset: tuple[Path, Path, Path]) -> Iterator[Served]:
    db, train, outside = dataset
    proc, base = start_server(db)
    try:
        yield Served(base, db, train, outside)
    finally:
        stderr = stop_server(proc)
        assert b"Traceback" not in stderr, stderr.decode(errors="replace")


# --- only files inside the scanned folders -------------------------------------------------------


def test_a_link_to_etc_passwd_is_not_served(served: Served) -> None:
    number = served.image_id(served.train / "x.jpg")
    for suffix in ("", "/thumbnail"):
        response = served.get(f"/-/imgindex/image/{number}{suffix}")
        assert response.status_code in (403, 404)
        assert b"root:" not in response.content
    review = served.get(f"/-/imgindex/image/{number}/review")
    assert review.status_code == 200 and "outside the folders" in review.text


def test_a_linked_folder_leading_outside_is_not_served(served: Served) -> None:
    number = served.image_id(served.train / "linked" / "secret.jpg")
    assert served.get(f"/-/imgindex/image/{number}").status_code in (403, 404)
    assert served.get(f"/-/imgindex/image/{number}/thumbnail").status_code in (403, 404)


def test_a_link_inside_the_folder_is_served(served: Served) -> None:
    number = served.image_id(served.train / "alias.jpg")
    assert served.get(f"/-/imgindex/image/{number}").content == JPEG.read_bytes()
    assert served.get(f"/-/imgindex/image/{number}/thumbnail").content.startswith(b"\xff\xd8")


def test_a_file_replaced_by_a_link_out_is_refused_after_a_rescan(served: Served) -> None:
    target = served.train / "replaced.jpg"
    before = served.image_id(target)
    assert served.get(f"/-/imgindex/image/{before}").status_code == 200
    target.unlink()
    target.symlink_to(PASSWD)
    scan(served.db, {"train": [served.train]}, workers=1)  # indexes the link: same size and mtime now
    after = served.image_id(target)
    response = served.get(f"/-/imgindex/image/{after}")
    assert response.status_code in (403, 404) and b"root:" not in response.content


def test_the_check_is_made_at_request_time(served: Served, tmp_path: Path) -> None:
    """A folder link re-pointed after the scan: the stored stamps still match (same file, other
    place), but the file now lies outside the split's folders."""
    inside = served.train / "moved"
    inside.mkdir()
    shutil.copy(OTHER_JPEG, inside / "moved.jpg")
    scan(served.db, {"train": [served.train]}, workers=1)
    number = served.image_id(inside / "moved.jpg")
    assert served.get(f"/-/imgindex/image/{number}").status_code == 200
    away = served.outside / "moved"
    inside.rename(away)  # same inode, same size and mtime, now outside
    inside.symlink_to(away, target_is_directory=True)
    assert served.get(f"/-/imgindex/image/{number}").status_code in (403, 404)


# --- file names in downloads ---------------------------------------------------------------------


def filename_star(disposition: str) -> str:
    value = disposition.split("filename*=", 1)[1].split(";", 1)[0].strip()
    charset, _, encoded = value.split("'", 2)
    assert charset.upper() == "UTF-8"
    return unquote(encoded, encoding="utf-8")


@pytest.mark.parametrize("name", [EMOJI_NAME, CRLF_NAME])
def test_downloads_carry_any_file_name(served: Served, name: str) -> None:
    number = served.image_id(served.train / name)
    response = served.get(f"/-/imgindex/image/{number}")
    assert response.status_code == 200
    assert response.content == (served.train / name).read_bytes()
    disposition = response.headers["content-disposition"]
    assert disposition.isascii() and "\r" not in disposition and "\n" not in disposition
    assert disposition.startswith('attachment; filename="')
    assert filename_star(disposition) == name
    assert "set-cookie" not in response.headers


def test_a_file_whose_name_is_not_utf8_is_served_from_its_bytes(served: Served) -> None:
    with sqlite3.connect(served.db) as conn:
        number, path_bytes = conn.execute("select id, path_bytes from images where path_bytes is not null").fetchone()
    assert path_bytes == bytes(served.train) + NOT_UTF8_NAME
    response = served.get(f"/-/imgindex/image/{number}")
    assert response.status_code == 200
    assert response.content == JPEG.read_bytes()


# --- thumbnails of huge images -------------------------------------------------------------------


def test_a_huge_png_gets_a_placeholder_within_the_default_budget(served: Served) -> None:
    number = served.image_id(served.train / "big.png")
    started = time.monotonic()
    response = served.get(f"/-/imgindex/image/{number}/thumbnail")
    assert response.status_code == 413
    assert "pixels" in response.headers["x-imgindex-reason"]
    placeholder = Image.open(io.BytesIO(response.content))
    assert placeholder.format == "JPEG" and max(placeholder.size) == 160
    assert time.monotonic() - started < 5
    assert served.get("/-/imgindex/image/1/thumbnail").status_code == 200  # the others still come


# --- Datasette's pages about the server ----------------------------------------------------------

INTERNALS = [
    "/-/databases.json",
    "/-/databases",
    "/-/threads",
    "/-/threads.json",
    "/-/allow-debug",
    "/-/versions.json",
    "/-/settings.json",
    "/-/plugins.json",
    "/-/config",
    "/-/config.json",
    "/-/metadata.json",
    "/-/actor.json",
    "/-/messages",
    "/-/patterns",
    "/-/permissions",
    "/-/%74hreads",
    "/-/databases.json/",
]


@pytest.mark.parametrize("path", INTERNALS)
def test_pages_about_the_server_are_off_by_default(served: Served, path: str) -> None:
    response = served.get(path, follow_redirects=True)
    assert response.status_code == 404
    assert str(served.db) not in response.text and "index.db" not in response.text


def test_the_dataset_pages_stay_on(served: Served) -> None:
    assert served.get("/index/images").status_code == 200
    assert served.get("/index.json").status_code == 200


def test_debug_pages_and_the_pixel_budget_are_options(served: Served) -> None:
    proc, base = start_server(served.db, "--debug-pages", "--thumbnail-max-pixels", str(BIG_SIDE * BIG_SIDE))
    try:
        assert httpx.get(base + "/-/databases.json").json()[0]["name"] == "index"
        assert httpx.get(base + "/-/versions.json").status_code == 200
        number = served.image_id(served.train / "big.png")
        response = httpx.get(f"{base}/-/imgindex/image/{number}/thumbnail", timeout=60)
        assert response.status_code == 200
        thumbnail = Image.open(io.BytesIO(response.content))
        assert thumbnail.size == (160, 160) and thumbnail.getpixel((80, 80)) == pytest.approx((200, 120, 40), abs=4)
    finally:
        stop_server(proc)


@pytest.mark.parametrize(
    "name, fallback",
    [
        ("plain.jpg", "plain.jpg"),
        ('say "hi" \\ there.tif', "say _hi_ _ there.tif"),
        ("caf\u00e9 \U0001f431.png", "caf_ _.png"),
        ("line\r\nbreak.jpg", "line__break.jpg"),
        ("odd \udcff byte.jpg", "odd _ byte.jpg"),  # an undecodable byte of the file system
    ],
)
def test_content_disposition_has_an_ascii_fallback_and_the_exact_name(name: str, fallback: str) -> None:
    header = content_disposition(name)
    assert header.isascii() and header.startswith(f'attachment; filename="{fallback}"; ')
    assert unquote(header.split("UTF-8''", 1)[1], errors="surrogateescape") == name


def test_plain_datasette_keeps_its_pages_unless_configured(dataset: tuple[Path, Path, Path]) -> None:
    db = dataset[0]

    async def status(metadata: dict[str, object]) -> int:
        response = await Datasette([str(db)], metadata=metadata).client.get("/-/threads.json")
        return response.status_code

    assert asyncio.run(status({})) == 200
    assert asyncio.run(status({"plugins": {"imgindex": {"debug_pages": False}}})) == 404


@pytest.mark.parametrize(
    "path, raw, base_url, hidden",
    [
        ("/-/threads", b"/-/threads", "/", True),
        ("/-/threads", b"/-/%74hreads", "/", True),
        ("//-//databases.json", b"//-//databases.json", "/", True),
        ("/prefix/-/versions.json", b"/prefix/-/versions.json", "/prefix/", True),
        ("/-/imgindex/image/1", b"/-/imgindex/image/1", "/", False),
        ("/index/threads", b"/index/threads", "/", False),
        ("/-/static/app.css", b"/-/static/app.css", "/", False),
    ],
)
def test_debug_pages_are_recognised_however_spelled(path: str, raw: bytes, base_url: str, hidden: bool) -> None:
    assert is_debug_page({"path": path, "raw_path": raw}, base_url) is hidden


class RefusingDb:
    """A Datasette database whose reads are refused (a lock held past the busy timeout)."""

    async def execute(self, sql: str, params: list[str]) -> Any:
        raise sqlite3.OperationalError("database is locked")


def test_a_refused_read_is_a_503_and_datasette_reads_wait_as_imgindex_does() -> None:
    """A read the index refuses never looks like 'outside the folders' (403): it is a 503; and
    Datasette's connections wait for a lock as long as imgindex's own readers."""
    import asyncio

    from datasette.views.base import DatasetteError

    from imgindex import store
    from imgindex.serve import plugin

    with pytest.raises(DatasetteError) as refused:
        asyncio.run(plugin._roots(RefusingDb(), "train"))  # type: ignore[arg-type]
    assert refused.value.status == 503
    conn = sqlite3.connect(":memory:")
    plugin.prepare_connection(conn)
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == int(store.LOCKS.busy_timeout * 1000)
