"""Many commands on one index at once (scripts/soak.py, for 12 s): `imgindex watch` and `imgindex
serve` as real processes, scans again and again, duplicates --json, a report and Datasette requests,
while a thread adds, changes and removes images and label files. No command fails or prints a
traceback, the watch is still following at the end, and after a last scan the index equals a clean
scan of the same files."""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
from pathlib import Path
from types import ModuleType

from conftest import ROOT

SECONDS = 12.0  # of everything at once; with start and checks about 30 s on two cores


def soak_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak", ROOT / "scripts" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_watch_scans_and_readers_share_one_index(tmp_path: Path) -> None:
    soak = soak_module()
    lines: list[str] = []
    outcome = soak.Soak(tmp_path, SECONDS, seed=1, scanners=2, log=lines.append).run()
    assert outcome.errors == []
    assert outcome.differences == []
    for command in ("scan", "duplicates", "report", "http"):
        assert outcome.runs[command] >= 1, outcome.runs
    assert outcome.runs["file added"] + outcome.runs["variant added"] > 36  # the 36 of the start, and more
    assert outcome.runs["file changed"] + outcome.runs["file removed"] >= 1
    assert 0 < outcome.last_change_seconds < 60  # the watch followed to the end
    with sqlite3.connect(tmp_path / "index.db") as conn:
        splits = {r[0] for r in conn.execute("select distinct split from images")}
    assert splits == {"train", "val", "extra"}
