"""End to end in a real headless Chromium: `imgindex serve`, the leakage page, thumbnails that load.

Talks W3C WebDriver to Debian's chromedriver over HTTP (no client library needed).
Set IMGINDEX_SCREENSHOT=path.png to keep the screenshot.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import free_port, wait_http
from PIL import Image

from imgindex.scan import scan

DATA = Path(__file__).parent / "data"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1200,1000",
]

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("IMGINDEX_REQUIRE_BROWSER"),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
)  # with IMGINDEX_REQUIRE_BROWSER set (CI) a missing browser fails the test instead


class Browser:
    """The few WebDriver commands the test needs."""

    def __init__(self, driver_url: str, profile: Path) -> None:
        self.http = httpx.Client(base_url=driver_url, timeout=60)
        options = {"binary": CHROMIUM, "args": [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]}
        capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
        self.session = self._call("POST", "/session", {"capabilities": capabilities})["sessionId"]

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, path, json=body)
        value = response.json()["value"]
        if response.status_code != 200:
            raise RuntimeError(f"WebDriver {path}: {value}")
        return value

    def command(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        self.command("POST", "/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        return self.command("POST", "/execute/sync", {"script": script, "args": list(args)})

    def screenshot(self) -> bytes:
        return base64.b64decode(self.command("GET", "/screenshot"))

    def quit(self) -> None:
        self.command("DELETE", "")
        self.http.close()


def start(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[str]:
    """A real index with a leak between train and val and a dark image, served by `imgindex serve`."""
    train, val = tmp_path / "train", tmp_path / "val"
    shutil.copytree(DATA / "coco8" / "images" / "train", train)
    val.mkdir()
    for name in ("000000000025.jpg", "000000000030.jpg", "000000000036.jpg"):
        shutil.copy(DATA / "coco128_sample" / "images" / "train2017" / name, val / name)
    Image.new("RGB", (320, 240), (12, 10, 14)).save(train / "night.png")  # flagged dark
    db = tmp_path / "index.db"
    scan(db, {"train": [train], "val": [val]}, workers=1)
    port = free_port()
    server = start([sys.executable, "-m", "imgindex", "serve", "--db", str(db), "--port", str(port)])
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Browser]:
    port = free_port()
    driver = start([str(CHROMEDRIVER), f"--port={port}"])
    try:
        wait_http(f"http://127.0.0.1:{port}/status")
        session = Browser(f"http://127.0.0.1:{port}", tmp_path / "chromium-profile")
        try:
            yield session
        finally:
            session.quit()
    finally:
        driver.terminate()
        driver.wait(10)


THUMBNAILS = """
return Array.from(document.querySelectorAll('td img.imgindex-thumb')).map(img => ({
  column: img.closest('td').className, complete: img.complete, width: img.naturalWidth}));
"""


TABLE_BOTTOM = """
const table = document.querySelector('table.rows-and-columns');
return (table.getBoundingClientRect().bottom + window.scrollY) * window.devicePixelRatio;
"""


def loaded(browser: Browser, timeout: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        images = browser.run(THUMBNAILS)
        if (images and all(i["complete"] for i in images)) or time.monotonic() > deadline:
            return list(images)
        time.sleep(0.1)


def test_leakage_page_shows_train_and_validation_thumbnails(served: str, browser: Browser, tmp_path: Path) -> None:
    browser.open(f"{served}/index/leakage")
    images = loaded(browser)
    assert len(images) == 4  # 2 leaked pictures, each once in train and once in val
    assert all(i["width"] > 0 for i in images), images
    assert sorted(i["column"].split()[0] for i in images) == ["col-paths_a"] * 2 + ["col-paths_b"] * 2
    shot = browser.screenshot()
    assert shot.startswith(b"\x89PNG")
    (tmp_path / "leakage.png").write_bytes(shot)
    if os.environ.get("IMGINDEX_SCREENSHOT"):
        bottom = browser.run(TABLE_BOTTOM)
        with Image.open(io.BytesIO(shot)) as picture:
            picture.crop((0, 0, picture.width, min(picture.height, int(bottom) + 6))).save(
                os.environ["IMGINDEX_SCREENSHOT"], optimize=True
            )


REVIEW_PICTURE = """
const img = document.querySelector('img.imgindex-picture-img');
const svg = document.querySelector('svg.imgindex-boxes');
const a = img.getBoundingClientRect(), b = svg.getBoundingClientRect();
return {complete: img.complete, width: img.naturalWidth, svg: [b.width - a.width, b.height - a.height],
        neighbours: Array.from(document.querySelectorAll('.imgindex-neighbour img')).map(i => i.complete && i.naturalWidth)};
"""


def test_a_thumbnail_opens_the_review_page_whose_picture_loads(served: str, browser: Browser) -> None:
    browser.open(f"{served}/index/leakage")
    loaded(browser)
    link = browser.run("return document.querySelector('td.col-paths_b a').href;")
    assert "/review?db=index" in link
    browser.open(link)
    deadline = time.monotonic() + 15
    while True:
        state = browser.run(REVIEW_PICTURE)
        done = state["complete"] and state["neighbours"] and all(state["neighbours"])
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert state["width"] > 0, state
    assert state["svg"] == [0, 0]  # the box overlay covers the picture exactly
    assert state["neighbours"] and all(w > 0 for w in state["neighbours"]), state  # the train copy


QUALITY_PAGE = """
const images = Array.from(document.querySelectorAll('td.col-path img.imgindex-thumb'));
return {thumbs: images.map(img => img.complete && img.naturalWidth),
        link: images.length ? images[0].closest('a').href : null,
        description: document.querySelector('.metadata-description').textContent};
"""


def test_a_quality_flag_query_shows_its_images_and_the_review_page_its_flags(served: str, browser: Browser) -> None:
    browser.open(f"{served}/index/quality_flag_dark")
    deadline = time.monotonic() + 15
    while True:
        state = browser.run(QUALITY_PAGE)
        if (state["thumbs"] and all(state["thumbs"])) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(state["thumbs"]) == 1 and state["thumbs"][0] > 0, state  # night.png
    rule = httpx.get(f"{served}/index.json", params={"sql": "select rule from quality_rule where flag = 'dark'"})
    assert rule.json()["rows"][0][0] in state["description"]
    browser.open(state["link"])
    flags = browser.run("return document.querySelector('#quality + ul').textContent;")
    assert "dark" in flags and "low_information" in flags


def serve(db: Path, *flags: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = start([sys.executable, "-m", "imgindex", "serve", "--db", str(db), "--port", str(port), *flags])
    wait_http(f"http://127.0.0.1:{port}/")
    return server, f"http://127.0.0.1:{port}"


def leaked_pair(tmp_path: Path) -> tuple[Path, int]:
    """An index whose val holds a re-encode of a train photo; the val image's id."""
    train, val = tmp_path / "train", tmp_path / "val"
    shutil.copytree(DATA / "coco128_sample" / "images" / "train2017", train)
    shutil.copytree(DATA / "coco8" / "images" / "val", val)
    db = tmp_path / "index.db"
    scan(db, {"train": [train], "val": [val]}, workers=1)
    with sqlite3.connect(db) as conn:
        image_id = conn.execute(
            "select id from images where split = 'val' and rel_path = '000000000036.jpg'"
        ).fetchone()[0]
    return db, int(image_id)


def test_a_reviewer_marks_a_leak_not_a_duplicate_in_the_browser(browser: Browser, tmp_path: Path) -> None:
    db, image_id = leaked_pair(tmp_path)
    server, url = serve(db, "--allow-reviews")
    try:
        browser.open(f"{url}/-/imgindex/image/{image_id}/review?db=index")
        clicked = browser.run(
            "const b = document.querySelector('.imgindex-neighbour button[data-verdict=\"not-duplicate\"]');"
            "if (!b) return false; b.click(); return true;"
        )
        assert clicked
        deadline = time.monotonic() + 15
        while "reviewed: not a duplicate" not in (browser.run("return document.body.innerText;") or ""):
            assert time.monotonic() < deadline, browser.run("return document.body.innerText;")
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(10)
    with sqlite3.connect(db) as conn:
        assert conn.execute("select verdict, source from reviews").fetchall() == [("not-duplicate", "serve")]
        assert conn.execute("select count(*) from leakage").fetchone()[0] == 1  # 2 before
