"""Cold-scan throughput through a Dask scheduler, for 1, 2 and 4 local worker processes, as ratios
against the local process pool measured in the same run.

    python scripts/bench_cluster.py [FOLDER] [--files 1000] [--workers 1 2 4] [--rounds 3]

FOLDER defaults to ../shared/data; its images are hard-linked into a tree of --files files (the
scan's cost does not depend on the names). For each worker count a LocalCluster of that many
single-threaded worker processes is started once (its start-up is printed apart), then cold scans
through its scheduler address alternate with cold scans on the local pool of as many processes;
the median of --rounds each is printed. On a machine with fewer cores than workers the figures
show the engine's overhead (task round trips, results crossing a socket), not its scaling.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import distributed

from imgindex.executors import ProcessPool, default_workers
from imgindex.executors.cluster import DaskCluster
from imgindex.labels import LabelSetup
from imgindex.scan import scan
from imgindex.walk import walk_images


def link_tree(sources: list[str], target: Path, n: int) -> None:
    target.mkdir(parents=True)
    for i in range(n):
        os.link(sources[i % len(sources)], target / f"{i:07d}{Path(sources[i % len(sources)]).suffix}")


def cold(tree: Path, executor: object, tmp: str) -> float:
    """Seconds of one cold scan of ``tree`` (labels left out: extraction and the writer only)."""
    db = Path(tempfile.mkdtemp(dir=tmp)) / "cold.db"
    start = time.perf_counter()
    scan(db, {"data": [tree]}, executor=executor, label_setup=LabelSetup({"data": []}, None))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sources = [e.path for e in walk_images(str(args.folder)) if e.path.lower().endswith((".jpg", ".jpeg", ".png"))]
    print(f"{args.files} files (links to {len(sources)} images of {args.folder}); {default_workers()} CPUs here")
    print(f"{'workers':>7}  {'start s':>7}  {'pool img/s':>10}  {'dask img/s':>10}  {'dask/pool':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        link_tree(sources, tree, args.files)
        for workers in args.workers:
            started = time.perf_counter()
            with distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
            ) as cluster:
                start_s = time.perf_counter() - started
                with DaskCluster(cluster.scheduler_address) as on_cluster:
                    cold(tree, on_cluster, tmp)  # connects, and warms the workers' imports
                    pool_s, dask_s = [], []
                    for _ in range(args.rounds):
                        pool_s.append(cold(tree, ProcessPool(workers), tmp))
                        dask_s.append(cold(tree, on_cluster, tmp))
            pool_rate = args.files / statistics.median(pool_s)
            dask_rate = args.files / statistics.median(dask_s)
            print(
                f"{workers:>7}  {start_s:>7.1f}  {pool_rate:>10.0f}  {dask_rate:>10.0f}  {dask_rate / pool_rate:>9.2f}"
            )


if __name__ == "__main__":
    main()
