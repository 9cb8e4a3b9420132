"""Benchmark of label indexing (the label stage of `imgindex scan`) on a large YOLO tree.

Builds N label files (copies of real coco128 labels, default from ../shared/data/coco128) and the
matching rows of the images table (real image sizes, no decoding: this measures labels only), then
times, in one process:
  - baseline cold: open and read every label file;
  - label indexing, cold (empty label tables);
  - baseline warm: os.stat of every label file;
  - label indexing, warm (nothing changed);
  - label indexing after 1 % of the label files changed.
Prints seconds and ratios against the baselines.

    python scripts/bench_labels.py [--files 20000] [--source ../shared/data/coco128]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from imgindex import store
from imgindex.labels import index_labels
from imgindex.labels.formats import detect


def build(source: Path, dest: Path, count: int) -> list[tuple[str, int, int]]:
    """Label files under dest/labels/train, image rows (path, width, height) under dest/images/train."""
    labels = sorted((source / "labels" / "train2017").glob("*.txt"))
    images = {p.stem: p for p in (source / "images" / "train2017").glob("*.jpg")}
    pairs = [(lb, images[lb.stem]) for lb in labels if lb.stem in images]
    (dest / "labels/train").mkdir(parents=True)
    (dest / "images/train").mkdir(parents=True)
    rows = []
    for i in range(count):
        label, image = pairs[i % len(pairs)]
        shutil.copyfile(label, dest / "labels/train" / f"{i:07d}.txt")
        target = dest / "images/train" / f"{i:07d}.jpg"
        os.link(image, target) if i < 2000 else None  # a few real files; the rest exist only in the index
        width, height = Image.open(image).size
        rows.append((str(target), width, height))
    return rows


def fill_images(db_path: Path, rows: list[tuple[str, int, int]]) -> None:
    db = store.open_db(db_path)
    store.upsert_images(
        db,
        [
            {
                "split": "train",
                "path": p,
                "rel_path": os.path.basename(p),
                "size": 1,
                "mtime_ns": 1,
                "width": w,
                "height": h,
            }
            for p, w, h in rows
        ],
    )
    db.close()


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/coco128")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = build(args.source, root / "data", args.files)
        fill_images(root / "bench.db", rows)
        files = sorted((root / "data/labels/train").iterdir())
        plan = detect("train", root / "data/images/train")
        db = store.open_db(root / "bench.db")

        def run() -> None:
            index_labels(db, "train", [plan], 1, None, set())

        read_all = timed(lambda: [f.read_bytes() for f in files])
        cold = timed(run)
        stat_all = timed(lambda: [os.stat(f) for f in files])
        warm = timed(run)
        for f in files[::100]:
            f.write_text(f.read_text() + "0 0.5 0.5 0.1 0.1\n")
        changed = timed(run)
        labels = db.execute("SELECT COUNT(*) FROM labels").fetchone()[0]
        print(f"{len(files)} label files, {labels} labels")
        print(f"baseline read all files   {read_all:7.3f} s")
        print(
            f"cold label indexing       {cold:7.3f} s  ({cold / read_all:5.1f}x reading the files, "
            f"{len(files) / cold:,.0f} files/s)"
        )
        print(f"baseline stat all files   {stat_all:7.3f} s")
        print(f"warm label indexing       {warm:7.3f} s  ({warm / stat_all:5.1f}x the stat walk)")
        print(f"1 % changed               {changed:7.3f} s  ({changed / stat_all:5.1f}x the stat walk)")
        db.close()


if __name__ == "__main__":
    main()
