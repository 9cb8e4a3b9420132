"""`imgindex watch` with real file events in temporary folders."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imgindex.scan import ScanSummary
from imgindex.watch import Watcher

DATA = Path(__file__).parent / "data" / "coco8" / "images" / "train"
PICTURE = DATA / "000000000009.jpg"
OTHER = DATA / "000000000030.jpg"
LATENCY = 2.0  # seconds from a finished change to the database


def rows(db: Path, sql: str = "select split, path, size, sha256, error, id from images") -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def paths(db: Path) -> dict[str, str]:
    return {path: split for split, path, *_ in rows(db)}


def wait_for(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until check() held; fails the test after `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started


class Running:
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.batches: list[ScanSummary] = []
        watcher.on_batch = self.batches.append
        self.thread = threading.Thread(target=self._run)
        self.summary: Any = None

    def _run(self) -> None:
        self.summary = self.watcher.run()


@pytest.fixture()
def folders(tmp_path: Path) -> dict[str, Path]:
    train, val = tmp_path / "train", tmp_path / "val"
    train.mkdir()
    val.mkdir()
    shutil.copy(PICTURE, train / "first.jpg")
    return {"db": tmp_path / "index.db", "train": train, "val": val, "tmp": tmp_path}


@pytest.fixture()
def watching(folders: dict[str, Path]) -> Iterator[Running]:
    watcher = Watcher(folders["db"], {"train": [folders["train"]], "val": [folders["val"]]}, workers=1)
    running = Running(watcher)
    running.thread.start()
    assert watcher.ready.wait(20), "the initial scan did not finish"
    yield running
    watcher.stop.set()
    running.thread.join(10)
    assert not running.thread.is_alive()


def test_initial_scan_indexes_what_is_there(folders: dict[str, Path], watching: Running) -> None:
    assert paths(folders["db"]) == {str(folders["train"] / "first.jpg"): "train"}


def test_created_file_reaches_the_index_within_two_seconds(folders: dict[str, Path], watching: Running) -> None:
    target = folders["val"] / "sub" / "new.jpg"
    target.parent.mkdir()
    shutil.copy(OTHER, target)
    seconds = wait_for(lambda: str(target) in paths(folders["db"]), timeout=10)
    assert seconds < LATENCY
    (row,) = rows(folders["db"], f"select split, rel_path, size, error from images where path = '{target}'")
    assert row == ("val", "sub/new.jpg", OTHER.stat().st_size, None)


def test_modified_file_is_re_read_and_keeps_its_id(folders: dict[str, Path], watching: Running) -> None:
    target = folders["train"] / "first.jpg"
    (before,) = [r for r in rows(folders["db"]) if r[1] == str(target)]
    shutil.copy(OTHER, target)
    seconds = wait_for(lambda: any(r[2] == OTHER.stat().st_size for r in rows(folders["db"])), timeout=10)
    assert seconds < LATENCY
    (after,) = [r for r in rows(folders["db"]) if r[1] == str(target)]
    assert after[3] != before[3] and after[5] == before[5]  # new content hash, same id


def test_moves_within_and_across_splits(folders: dict[str, Path], watching: Running) -> None:
    first = folders["train"] / "first.jpg"
    renamed = folders["train"] / "renamed.jpg"
    first.rename(renamed)
    wait_for(lambda: paths(folders["db"]) == {str(renamed): "train"}, timeout=LATENCY)
    moved = folders["val"] / "renamed.jpg"
    renamed.rename(moved)
    wait_for(lambda: paths(folders["db"]) == {str(moved): "val"}, timeout=LATENCY)


def test_deleted_file_leaves_the_index(folders: dict[str, Path], watching: Running) -> None:
    (folders["train"] / "first.jpg").unlink()
    wait_for(lambda: paths(folders["db"]) == {}, timeout=LATENCY)


def test_folders_moved_in_and_out(folders: dict[str, Path], watching: Running) -> None:
    outside = folders["tmp"] / "incoming"
    (outside / "deep").mkdir(parents=True)
    shutil.copy(PICTURE, outside / "a.jpg")
    shutil.copy(OTHER, outside / "deep" / "b.jpg")
    (outside / "notes.txt").write_text("not an image")
    outside.rename(folders["val"] / "incoming")
    expected = {str(folders["val"] / "incoming" / "a.jpg"), str(folders["val"] / "incoming" / "deep" / "b.jpg")}
    wait_for(lambda: expected <= set(paths(folders["db"])), timeout=LATENCY)
    (folders["val"] / "incoming").rename(outside)
    wait_for(lambda: set(paths(folders["db"])) == {str(folders["train"] / "first.jpg")}, timeout=LATENCY)


def write_pngs(folder: Path, count: int) -> None:
    rng = np.random.default_rng(7)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")


def test_a_burst_of_500_files_is_batched(folders: dict[str, Path], watching: Running) -> None:
    burst = folders["train"] / "burst"
    burst.mkdir()
    write_pngs(burst, 500)
    wait_for(lambda: len(paths(folders["db"])) == 501, timeout=30)
    assert sum(b.new for b in watching.batches) == 500
    assert len(watching.batches) <= 10  # a handful of transactions, not one per file
    assert not [r for r in rows(folders["db"]) if r[4] is not None]


def test_a_file_written_slowly_is_read_once_complete(folders: dict[str, Path], watching: Running) -> None:
    data = OTHER.read_bytes()
    target = folders["val"] / "slow.jpg"
    seen_early: list[Any] = []
    with open(target, "wb") as out:
        for start in range(0, len(data), len(data) // 8 + 1):
            out.write(data[start : start + len(data) // 8 + 1])
            out.flush()
            time.sleep(0.3)
            seen_early += [r for r in rows(folders["db"]) if r[1] == str(target)]
    assert seen_early == []  # nothing was read while the file grew
    wait_for(lambda: str(target) in paths(folders["db"]), timeout=LATENCY + 1)
    (row,) = [r for r in rows(folders["db"]) if r[1] == str(target)]
    assert row[2] == len(data) and row[4] is None
    assert sum(b.new + b.changed for b in watching.batches) == 1  # read exactly once


def test_readers_never_see_half_a_folder_move(folders: dict[str, Path], watching: Running) -> None:
    group = folders["train"] / "group"
    group.mkdir()
    write_pngs(group, 100)
    wait_for(lambda: len(paths(folders["db"])) == 101, timeout=15)
    counts: list[int] = []
    stop = threading.Event()

    def read() -> None:
        conn = sqlite3.connect(f"{folders['db'].resolve().as_uri()}?mode=ro", uri=True)
        while not stop.is_set():
            counts.append(conn.execute("select count(*) from images").fetchone()[0])
        conn.close()

    reader = threading.Thread(target=read)
    reader.start()
    group.rename(folders["train"] / "renamed-group")
    try:
        wait_for(lambda: sum(str(folders["train"] / "renamed-group") in p for p in paths(folders["db"])) == 100, 10)
    finally:
        stop.set()
        reader.join()
    assert len(counts) > 10 and set(counts) == {101}


def test_sigint_stops_cleanly_with_a_summary(folders: dict[str, Path]) -> None:
    """Ctrl-C reaches the whole process group, pool workers included, maybe in the middle of a batch."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imgindex",
            "watch",
            "--db",
            str(folders["db"]),
            "--workers",
            "2",
            f"train={folders['train']}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        while not any(line.startswith("Watching") for line in lines):
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else ""
            lines.append(line)
        shutil.copy(OTHER, folders["train"] / "added.jpg")
        wait_for(lambda: len(paths(folders["db"])) == 2, timeout=LATENCY)
        burst = folders["train"] / "burst"
        burst.mkdir()
        write_pngs(burst, 200)
        time.sleep(0.7)  # about when the burst's batch is being extracted
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "Initial scan: 1 new" in "".join(lines)
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("Stopped after") and " 0 removed, 0 errors" in summary
    new = int(summary.split(": ")[1].split(" new")[0])
    assert len(paths(folders["db"])) == 1 + new  # the summary counts exactly what was committed
    (ended,) = rows(folders["db"], "select ended_at from scans where arguments like '%watch%'")
    assert ended[0] is not None


def test_watching_a_dataset_file_says_where_the_splits_came_from(tmp_path: Path) -> None:
    ruby = tmp_path / "ruby"
    shutil.copytree(Path(__file__).parent / "data" / "rubyrizz_yolo", ruby)
    command = [sys.executable, "-m", "imgindex", "watch", "--db", str(tmp_path / "w.db"), str(ruby / "data.yaml")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        while not process.stdout.readline().startswith("Watching"):
            pass
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert first.startswith(f"Splits from the YOLO dataset file {ruby / 'data.yaml'}: train"), first
    assert "Traceback" not in err


def test_other_files_and_the_index_itself_are_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "imgindex.db"  # the index inside the watched folder: its writes are events too
    watcher = Watcher(db, {"data": [folder]}, workers=1)
    running = Running(watcher)
    running.thread.start()
    assert watcher.ready.wait(20)
    try:
        (folder / "notes.txt").write_text("not an image")
        shutil.copy(PICTURE, folder / "a.jpg")
        wait_for(lambda: len(paths(db)) == 1, timeout=LATENCY)
        time.sleep(1.5)  # several settle periods after the index's own writes
    finally:
        watcher.stop.set()
        running.thread.join(10)
    assert [(b.new, b.changed, b.removed) for b in running.batches] == [(1, 0, 0)]


def test_label_files_are_followed_too(tmp_path: Path) -> None:
    root = tmp_path / "coco8"
    shutil.copytree(Path(__file__).parent / "data" / "coco8", root)
    db = tmp_path / "index.db"
    images, labels = root / "images", root / "labels"
    watcher = Watcher(db, {"train": [images / "train"], "val": [images / "val"]}, workers=1)
    running = Running(watcher)
    running.thread.start()
    assert watcher.ready.wait(20)

    def boxes(image: Path) -> list[tuple[Any, ...]]:
        return rows(db, f"select class_id, round(cx, 3) from labels where image_path = '{image}' order by 1, 2")

    try:
        first = images / "train" / "000000000009.jpg"
        assert len(boxes(first)) == len((labels / "train" / "000000000009.txt").read_text().split("\n")) - 1
        (labels / "train" / "000000000009.txt").write_text("0 0.5 0.5 0.2 0.2\n")
        wait_for(lambda: boxes(first) == [(0, 0.5)], timeout=LATENCY)

        second = images / "train" / "000000000030.jpg"
        (labels / "train" / "000000000030.txt").unlink()
        problem = f"select kind from label_problems where path = '{second}'"
        wait_for(lambda: boxes(second) == [] and ("image_without_label",) in rows(db, problem), timeout=LATENCY)

        new = images / "val" / "new.jpg"
        (labels / "val" / "new.txt").write_text("1 0.25 0.25 0.1 0.1\n")
        shutil.copy(PICTURE, new)
        wait_for(lambda: boxes(new) == [(1, 0.25)], timeout=LATENCY)
    finally:
        watcher.stop.set()
        running.thread.join(10)
    assert running.summary.label_files >= 3


def test_near_pairs_follow_in_the_same_batch(folders: dict[str, Path], watching: Running) -> None:
    copy = folders["val"] / "copy.jpg"
    shutil.copy(PICTURE, copy)
    pairs = "select kind from near_pairs"
    wait_for(lambda: rows(folders["db"], pairs) == [("byte-identical",)], timeout=LATENCY)
    copy.unlink()
    wait_for(lambda: rows(folders["db"], pairs) == [], timeout=LATENCY)


def test_quality_flags_follow_in_the_same_batch(folders: dict[str, Path], watching: Running) -> None:
    """A dark image written while watching is flagged in the batch that indexes it; removed, its
    flag goes with it."""
    target = folders["val"] / "night.jpg"
    dark = np.asarray(Image.open(OTHER).convert("RGB"), dtype=np.float64) * 0.1
    Image.fromarray(dark.astype(np.uint8)).save(target, quality=90)

    def flagged() -> set[str]:
        sql = "select i.path from quality_flags f join images i on i.id = f.image_id where f.flag = 'dark'"
        return {r[0] for r in rows(folders["db"], sql)}

    wait_for(lambda: str(target) in flagged(), timeout=10)
    target.unlink()
    wait_for(lambda: not flagged() and str(target) not in paths(folders["db"]), timeout=10)
