"""The end of a cold scan, alone: the near pairs and the verdict of every image.

    python scripts/bench_end_of_scan.py [FOLDER] [--tree-files N] [--repeat 5]

FOLDER defaults to ../shared/data; with --tree-files, a tree of that many hard links to its images
(1,000 per folder, as scripts/bench_scan.py makes) is indexed instead: copies make a dense cluster
denser. The folder is scanned once; then, --repeat times, a copy of that index has every dHash
marked stale and its near pairs and verdict recomputed as a cold scan's last step does (one write
transaction: imgindex.near.pairs.update, then imgindex.near.verdict.store). Prints the best and
the median of each part, and how many pairs and groups it wrote. BLAS runs on one thread, as in
the imgindex command.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imgindex.__main__ import one_blas_thread

one_blas_thread()  # before NumPy loads: scans in this process run as the imgindex command runs them

from bench_scan import link_tree

from imgindex import store
from imgindex.near import pairs as near_pairs
from imgindex.near import verdict
from imgindex.scan import scan
from imgindex.walk import walk_images


def recompute(db_path: Path) -> tuple[float, float, int, int]:
    """Seconds of the near pairs and of the verdict, with every image stale; pairs and groups."""
    db = store.open_db(db_path)
    try:
        with store.write_transaction(db):
            db.execute("DELETE FROM near_pairs")
            db.execute("DELETE FROM near_images")
            db.execute("INSERT OR IGNORE INTO near_stale SELECT dhash FROM images WHERE dhash IS NOT NULL")
        with store.write_transaction(db):
            start = time.perf_counter()
            refreshed = near_pairs.update(db)
            middle = time.perf_counter()
            verdict.store(db, refreshed)
            end = time.perf_counter()
        pairs = db.execute("SELECT COUNT(*) FROM near_pairs").fetchone()[0]
        groups = db.execute("SELECT COUNT(*) FROM verdict_groups").fetchone()[0]
        return middle - start, end - middle, pairs, groups
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--tree-files", type=int, default=0, help="Index this many hard links to the images instead.")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder).resolve()
        if args.tree_files:
            tree = Path(tmp) / "tree"
            link_tree([e.path for e in walk_images(folder)], tree, args.tree_files)
            folder = tree
        scanned = Path(tmp) / "scanned.db"
        scan(scanned, {"data": [folder]})
        images = len([e for e in walk_images(folder)])
        runs = []
        for n in range(args.repeat):
            copy = Path(tmp) / f"run{n}.db"
            shutil.copy(scanned, copy)
            runs.append(recompute(copy))
        pairs_s, verdict_s = [r[0] for r in runs], [r[1] for r in runs]
        totals = [a + b for a, b in zip(pairs_s, verdict_s)]
        print(f"{images} images under {folder}: {runs[0][2]} near pairs, {runs[0][3]} groups and scenes")
        for label, values in (("near pairs", pairs_s), ("verdict", verdict_s), ("both", totals)):
            print(f"{label:11s} best {min(values) * 1000:7.1f} ms, median {statistics.median(values) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
