"""How fast `imgindex watch` follows changes, against baselines measured in the same run.

    python scripts/bench_watch.py [--images DIR] [--burst 500] [--singles 10]

Prints the latency from a finished change (create, modify, move, delete of one real image) to the
database, with the settle time as the reference, and a burst of files added at once against a
cold `imgindex scan` of the same files (same worker count).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from imgindex.executors import default_workers
from imgindex.scan import scan
from imgindex.walk import walk_images
from imgindex.watch import Watcher

DEFAULT_IMAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "coco128"


def count(db: Path, where: str = "1") -> int:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"select count(*) from images where {where}").fetchone()[0])
    finally:
        conn.close()


def until(check: Callable[[], bool], timeout: float = 120) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise SystemExit("timed out")
        time.sleep(0.005)
    return time.monotonic() - started


def place(sources: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, source in enumerate(sources):
        target = folder / f"{i:06d}{source.suffix}"
        try:
            os.link(source, target)
        except OSError:
            shutil.copy(source, target)


def singles(db: Path, folder: Path, sources: list[Path], n: int) -> dict[str, list[float]]:
    """Latency of each kind of change, one file at a time."""
    times: dict[str, list[float]] = {"create": [], "modify": [], "move": [], "delete": []}
    for i in range(n):
        path = folder / f"single{i}.jpg"
        shutil.copy(sources[i % len(sources)], path)
        times["create"].append(until(lambda: count(db, f"path = '{path}'") == 1))
        size = sources[(i + 1) % len(sources)].stat().st_size
        shutil.copy(sources[(i + 1) % len(sources)], path)
        times["modify"].append(until(lambda: count(db, f"path = '{path}' and size = {size}") == 1))
        moved = folder / f"moved{i}.jpg"
        path.rename(moved)
        times["move"].append(until(lambda: count(db, f"path = '{moved}'") == 1))
        moved.unlink()
        times["delete"].append(until(lambda: count(db, f"path = '{moved}'") == 0))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--singles", type=int, default=10)
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()
    sources = [Path(e.path) for e in walk_images(args.images)]
    if not sources:
        raise SystemExit(f"no images under {args.images}")
    burst_sources = [sources[i % len(sources)] for i in range(args.burst)]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        place(burst_sources, base / "cold")
        started = time.monotonic()
        scan(base / "cold.db", {"cold": [base / "cold"]}, workers=args.workers)
        cold = time.monotonic() - started

        watched = base / "watched"
        watched.mkdir()
        db = base / "watch.db"
        watcher = Watcher(db, {"w": [watched]}, workers=args.workers)
        thread = threading.Thread(target=watcher.run)
        thread.start()
        watcher.ready.wait()
        try:
            latencies = singles(db, watched, sources, args.singles)
            started = time.monotonic()
            place(burst_sources, watched / "burst")
            placing = time.monotonic() - started
            burst = until(lambda: count(db, "path like '%/burst/%'") == args.burst)
        finally:
            watcher.stop.set()
            thread.join()
    print(f"workers={args.workers} settle={watcher.settle} s, images from {args.images}")
    for kind, values in latencies.items():
        print(
            f"{kind:7s} latency: median {statistics.median(values):.2f} s, max {max(values):.2f} s "
            f"({statistics.median(values) / watcher.settle:.1f}x settle; target < 2 s)"
        )
    total = placing + burst
    print(
        f"burst of {args.burst} files: all indexed {total:.2f} s after the first appeared "
        f"({burst:.2f} s after the last); cold scan of the same files {cold:.2f} s; "
        f"ratio {total / cold:.2f}x the cold scan"
    )


if __name__ == "__main__":
    main()
