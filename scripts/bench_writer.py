"""The single writer's rate: how many image rows per second the scan's main process stores when
extraction costs nothing (the results are already there), and its CPU per row, by stage.

    python scripts/bench_writer.py [FOLDER] [--files 50000] [--rounds 3]

FOLDER defaults to ../shared/data. Its images are extracted once; a tree of --files hard links to
them is scanned with an executor that hands back those rows at once, each with hashes of its own
(random dHashes: the near-pair search meets the few pairs a real dataset of distinct photos has).
The scan is the real one (walk, plan, rows, batched upserts, near pairs, verdict, quality flags),
labels left out. Printed: rows/s and CPU microseconds per row of the whole scan, of each stage,
and of the stages that keep pace with the results as they stream in (rows, upserts, and the
indexes and triggers' work a large write does once at its end), and, as the baseline run in the
same process, the rows/s of a bare executemany of the same rows into a table of the same columns
with no index or trigger: the floor of SQLite itself.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imgindex import quality, scan, store
from imgindex.extract import extract
from imgindex.labels import LabelSetup
from imgindex.near import verdict
from imgindex.walk import walk_images

SPENT: dict[str, float] = defaultdict(float)  # stage -> CPU seconds, this round
# the stages that run as results arrive, the rate a cluster's workers feed; the others run once
# at the end of the scan (their cost per row is spread over the whole scan)
STREAMING = ("rows", "upserts", "deferred upkeep")


def timed_stage(owner: Any, name: str, stage: str) -> None:
    """Wrap ``owner.name`` so that the CPU it spends is added to SPENT[stage]."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            SPENT[stage] += time.process_time() - start

    setattr(owner, name, wrapper)


class Replay:
    """An executor whose results are ready: each path's row is handed back as it is asked for."""

    def __init__(self, rows: dict[str, dict[str, Any]]) -> None:
        self.rows = rows

    def run(self, paths: Sequence[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        return ((path, self.rows[path]) for path in paths)


def synthetic_rows(tree: Path, extracted: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    rng = random.Random(7)
    rows = {}
    for i, name in enumerate(sorted(os.listdir(tree))):
        row = dict(extracted[i % len(extracted)])
        for column, bits in (("dhash", 64), ("dhash_256", 256), ("sha256", 256), ("pixel_hash", 128)):
            row[column] = f"{rng.getrandbits(bits):0{bits // 4}x}"
        if row.get("window_hashes"):
            row["window_hashes"] = rng.randbytes(len(row["window_hashes"]))
        rows[str(tree / name)] = row
    return rows


def one_scan(tree: Path, rows: dict[str, dict[str, Any]], tmp: str) -> tuple[float, float]:
    """Wall and CPU seconds of one cold scan through the replaying executor."""
    SPENT.clear()
    db = Path(tempfile.mkdtemp(dir=tmp)) / "w.db"
    wall, cpu = time.perf_counter(), time.process_time()
    scan.scan(db, {"data": [tree]}, executor=Replay(rows), label_setup=LabelSetup({"data": []}, None))
    return time.perf_counter() - wall, time.process_time() - cpu


def bare_executemany(rows: list[dict[str, Any]], tmp: str) -> float:
    """Seconds to insert the same rows with one executemany into an unindexed table: the floor."""
    columns = sorted(set().union(*rows) | {"split", "path", "rel_path", "path_bytes", "scan_id"})
    conn = sqlite3.connect(Path(tempfile.mkdtemp(dir=tmp)) / "bare.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"CREATE TABLE t ({', '.join(columns)})")
    values = [tuple(r.get(c) for c in columns) for r in rows]
    start = time.perf_counter()
    with conn:
        conn.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(columns))})", values)
    conn.close()
    return time.perf_counter() - start


def measure(fn: Callable[[], tuple[float, float]], rounds: int) -> tuple[float, float, dict[str, float]]:
    runs = []
    for _ in range(rounds):
        wall, cpu = fn()
        runs.append((wall, cpu, dict(SPENT)))
    runs.sort(key=lambda run: run[0])
    return runs[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--files", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sources = [e.path for e in walk_images(str(args.folder))][:400]
    extracted = [row for row in map(extract, sources) if not row.get("error")]
    timed_stage(scan, "make_plan", "walk and plan")
    timed_stage(scan, "to_row", "rows")
    timed_stage(store, "upsert_images", "upserts")
    timed_stage(store, "restore_deferred", "deferred upkeep")
    timed_stage(verdict, "refresh", "near pairs and verdict")
    timed_stage(quality, "refresh", "quality flags")
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        for i in range(args.files):
            os.link(sources[i % len(sources)], tree / f"{i:08d}.jpg")
        rows = synthetic_rows(tree, extracted)
        wall, cpu, stages = measure(lambda: one_scan(tree, rows, tmp), args.rounds)
        flat = [
            {**row, "split": "data", "path": path, "rel_path": path, "path_bytes": None, "scan_id": 1}
            for path, row in rows.items()
        ]
        floor = statistics.median(bare_executemany(flat, tmp) for _ in range(args.rounds))
    n = args.files
    print(f"{n} image rows, results ready (median of {args.rounds} cold scans)")
    print(f"writer: {n / wall:,.0f} rows/s, {cpu / n * 1e6:.1f} us CPU per row (wall {wall:.2f} s)")
    for stage, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:<24} {seconds / n * 1e6:6.1f} us/row")
    streaming = sum(stages.get(stage, 0.0) for stage in STREAMING)
    print(
        f"while results stream in ({', '.join(STREAMING)}): {n / streaming:,.0f} rows/s, "
        f"{streaming / n * 1e6:.1f} us CPU per row"
    )
    print(f"baseline, bare executemany into an unindexed table: {n / floor:,.0f} rows/s")
    print(f"writer / bare executemany: {floor / wall:.2f}")


if __name__ == "__main__":
    main()
