"""A scan killed with SIGKILL leaves a consistent index that the next scan completes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from conftest import ROOT
from PIL import Image

FILES = 200


def slow_folder(tmp_path: Path) -> Path:
    """FILES hard links to one 1024x1024 noise PNG: each takes a full decode to index."""
    folder = tmp_path / "noise"
    folder.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    first = folder / "img_000.png"
    Image.fromarray(noise).save(first, compress_level=1)
    for i in range(1, FILES):
        os.link(first, folder / f"img_{i:03d}.png")
    return folder


def indexed_count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("select count(*) from images").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # not created yet


def start_scan(db: Path, folder: Path) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        "-m",
        "imgindex",
        "scan",
        "--db",
        str(db),
        "--workers",
        "1",
        "--batch-size",
        "5",
        "-q",
        f"noise={folder}",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_after(proc: subprocess.Popen[str], db: Path, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while indexed_count(db) < at_least and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the scan ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


def test_kill_minus_nine_then_resume(tmp_path: Path) -> None:
    folder, db = slow_folder(tmp_path), tmp_path / "index.db"
    done = 0
    for _ in range(3):
        kill_after(start_scan(db, folder), db, done + 5)
        con = sqlite3.connect(db)
        assert con.execute("pragma integrity_check").fetchone() == ("ok",)
        rows = con.execute("select count(*), count(dhash), count(error) from images").fetchone()
        assert rows[0] == rows[1] > done and rows[2] == 0  # only whole rows, more each time
        assert con.execute("select ended_at from scans order by id desc limit 1").fetchone() == (None,)
        done = rows[0]
        con.close()
    proc = start_scan(db, folder)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.startswith(f"{FILES - done} new, 0 changed, {done} unchanged, 0 removed, 0 errors")
    assert indexed_count(db) == FILES
