"""Time `imgindex report` on a 100k-image index, against reading the same rows with sqlite3.

The index is built from real data: coco128's 128 images and their YOLO labels are indexed by the
real scanner; then the scanned rows are replicated (new paths, splits
train/val/test 80/15/5) up to --images rows, each replica keeping its source's measurements and
boxes. Replicas get a fresh random dHash except every --dup-every-th one, which keeps its source's
dHash: a realistic sprinkling of duplicates and leakage rather than 100k-member groups.

    python scripts/bench_report.py [--images 100000] [--data /work/shared/data/coco128]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imgindex import store
from imgindex.near import pairs as near_index
from imgindex.report import build_report
from imgindex.scan import scan


def seed(db: Path, data: Path) -> int:
    """Scan the real images and their YOLO labels as split 'seed'; keep their boxes in seed_boxes."""
    scan(db, {"seed": [data / "images" / "train2017"]})
    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE seed_boxes AS SELECT image_path, class_id, cx, cy, w, h FROM labels WHERE split = 'seed';"
        "DELETE FROM labels WHERE split = 'seed'; DELETE FROM label_files WHERE split = 'seed';"
        "DELETE FROM label_problems WHERE split = 'seed';"
    )
    conn.commit()
    boxes = conn.execute("SELECT count(*) FROM seed_boxes").fetchone()[0]
    conn.close()
    return int(boxes)


def copied_columns(db: Path) -> list[str]:
    """The image columns copied from the seed rows (the rest are made up per copy)."""
    index = store.open_db(db)
    try:
        return [c for c in store.image_columns(index) if c not in ("split", "path", "rel_path", "dhash")]
    finally:
        index.close()


def replicate(db: Path, n_images: int, dup_every: int) -> tuple[int, int]:
    copied = copied_columns(db)
    conn = sqlite3.connect(db)
    cols = ", ".join(copied)
    src_cols = ", ".join(f"s.{c}" for c in copied)
    conn.executescript(f"""
        CREATE TEMP TABLE src AS SELECT row_number() OVER (ORDER BY path) - 1 AS k, * FROM images WHERE split = 'seed';
        CREATE TEMP TABLE rep AS
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {n_images - 1})
        SELECT i, CASE WHEN i % 20 < 16 THEN 'train' WHEN i % 20 < 19 THEN 'val' ELSE 'test' END AS split,
               i % (SELECT count(*) FROM src) AS k FROM n;
        INSERT INTO images (split, path, rel_path, dhash, {cols})
        SELECT r.split, '/bench/' || r.split || '/' || printf('%06d', r.i) || '.jpg', printf('%06d', r.i) || '.jpg',
               CASE WHEN r.i % {dup_every} = 0 THEN s.dhash ELSE lower(hex(randomblob(8))) END, {src_cols}
        FROM rep r JOIN src s ON s.k = r.k;
        INSERT INTO labels (split, image_path, class_id, cx, cy, w, h, area)
        SELECT r.split, '/bench/' || r.split || '/' || printf('%06d', r.i) || '.jpg', b.class_id, b.cx, b.cy, b.w, b.h, b.w * b.h
        FROM rep r JOIN src s ON s.k = r.k JOIN seed_boxes b ON b.image_path = s.path;
        DELETE FROM images WHERE split = 'seed';
        DELETE FROM splits;
        INSERT INTO splits (name, root) VALUES ('train', '/bench/train'), ('val', '/bench/val'), ('test', '/bench/test');
        INSERT OR REPLACE INTO settings VALUES ('labels.format.train', 'yolo'), ('labels.format.val', 'yolo'),
            ('labels.format.test', 'yolo');
        DROP TABLE seed_boxes;
    """)
    conn.commit()
    counts = conn.execute("SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM labels)").fetchone()
    conn.execute("VACUUM")
    conn.close()
    database = store.open_db(db)
    near_index.refresh(database)  # the scanner's last step: pairs of near-identical hashes
    database.close()
    return counts


def baseline(db: Path) -> float:
    """Read every row the report reads, with plain sqlite3."""
    started = time.perf_counter()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.execute(
        "SELECT split, width, height, brightness, size, format, mean_r, mean_g, mean_b, histogram, dhash, path FROM images"
    ).fetchall()
    conn.execute("SELECT split, image_path, class_id, class_name, cx, cy, w, h, area FROM labels").fetchall()
    conn.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/coco128"))
    parser.add_argument("--dup-every", type=int, default=499)
    parser.add_argument("--db", type=Path, help="keep the index here (an existing file is reused as is)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.db"
        if not db.exists():
            started = time.perf_counter()
            seed_boxes = seed(db, args.data)
            n_images, n_boxes = replicate(db, args.images, args.dup_every)
            print(
                f"index: {n_images} images, {n_boxes} boxes (from {seed_boxes} real boxes), built in {time.perf_counter() - started:.1f} s"
            )
        base = baseline(db)
        started = time.perf_counter()
        outcome = build_report(db, out_dir=Path(tmp) / "logs", title="bench")
        seconds = time.perf_counter() - started
        print(f"baseline (sqlite3 reads the same rows): {base:.2f} s")
        print(f"imgindex report: {seconds:.2f} s ({len(outcome.features)} features, {len(outcome.errors)} errors)")
        print(
            f"ratio report / baseline: {seconds / base:.1f}x; target under 10 s: {'met' if seconds < 10 else 'MISSED'}"
        )
        slowest = sorted(outcome.seconds.items(), key=lambda kv: -kv[1])
        print("  " + ", ".join(f"{name} {sec:.2f} s" for name, sec in slowest))
        for error in outcome.errors:
            print(f"  error: {error['title']}: {error['error']}")


if __name__ == "__main__":
    main()
