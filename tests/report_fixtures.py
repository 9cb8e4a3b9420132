"""Indexes for the report tests: real images scanned by the real scanner, labels in the label tables.

The label tables follow the labels schema (schema/002_labels.sql); `LABEL_DDL` creates them
when this database does not have them yet, with the same columns.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from PIL import Image

from conftest import DATA
from imgindex.scan import scan

COCO8 = DATA / "coco8"
# COCO-80 names of the classes used in coco8 (the YOLO files hold ids only).
COCO_NAMES = {0: "person", 16: "dog", 17: "horse", 20: "elephant", 22: "zebra", 23: "giraffe",
              25: "umbrella", 45: "bowl", 49: "orange", 50: "broccoli", 58: "potted plant", 75: "vase"}  # fmt: skip

LABEL_DDL = """
CREATE TABLE IF NOT EXISTS label_files (id INTEGER PRIMARY KEY, split TEXT NOT NULL, path TEXT NOT NULL,
    format TEXT, size INTEGER, mtime_ns INTEGER, error TEXT, scan_id INTEGER, UNIQUE (split, path));
CREATE TABLE IF NOT EXISTS labels (id INTEGER PRIMARY KEY, label_file_id INTEGER, split TEXT NOT NULL,
    image_path TEXT, class_id INTEGER, class_name TEXT, cx REAL, cy REAL, w REAL, h REAL,
    x1 REAL, y1 REAL, x2 REAL, y2 REAL, area REAL);
CREATE TABLE IF NOT EXISTS label_problems (id INTEGER PRIMARY KEY, label_file_id INTEGER, split TEXT,
    path TEXT, line INTEGER, kind TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS classes (split TEXT, class_id INTEGER, name TEXT, PRIMARY KEY (split, class_id));
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT);
"""


def copy_coco8(dest: Path) -> dict[str, Path]:
    """coco8 images and YOLO labels under dest; returns split -> image folder."""
    shutil.copytree(COCO8, dest / "coco8")
    return {s: dest / "coco8" / "images" / s for s in ("train", "val")}


def yolo_rows(label_file: Path) -> list[list[float]]:
    rows = []
    for line in label_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 5:
            rows.append([float(p) for p in parts])
    return rows


def add_yolo_labels(db: Path, split: str, images: Path, labels: Path) -> None:
    """Label rows of a YOLO folder, unless the scan already indexed them."""
    conn = sqlite3.connect(db)
    conn.executescript(LABEL_DDL)
    with conn:  # coco8 ships no names file: name its classes as a data.yaml would
        conn.executemany(
            "INSERT INTO classes VALUES (?, ?, ?) ON CONFLICT (split, class_id) DO UPDATE SET name = coalesce(name, excluded.name)",
            [(split, k, v) for k, v in COCO_NAMES.items()],
        )
    if conn.execute("SELECT count(*) FROM labels WHERE split = ?", (split,)).fetchone()[0]:
        conn.close()
        return
    with conn:
        conn.execute("INSERT OR REPLACE INTO settings VALUES (?, 'yolo')", (f"labels.format.{split}",))
        for txt in sorted(labels.glob("*.txt")):
            image = images / f"{txt.stem}.jpg"
            cur = conn.execute(
                "INSERT INTO label_files (split, path, format, size, mtime_ns) VALUES (?, ?, 'yolo', ?, ?)",
                (split, str(txt), txt.stat().st_size, txt.stat().st_mtime_ns),
            )
            with Image.open(image) as img:
                width, height = img.size
            for cid, cx, cy, w, h in yolo_rows(txt):
                conn.execute(
                    "INSERT INTO labels (label_file_id, split, image_path, class_id, class_name, cx, cy, w, h,"
                    " x1, y1, x2, y2, area) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (cur.lastrowid, split, str(image.resolve()), int(cid), cx, cy, w, h, (cx - w / 2) * width,
                     (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height, w * h),
                )  # fmt: skip
    conn.close()


def add_problem(db: Path, split: str, path: str, kind: str) -> None:
    conn = sqlite3.connect(db)
    conn.executescript(LABEL_DDL)
    with conn:
        conn.execute("INSERT INTO label_problems (split, path, line, kind, detail) VALUES (?, ?, 1, ?, 'test')", (split, path, kind))
    conn.close()


def detection_index(tmp: Path) -> Path:
    """coco8 train/val, scanned, with its 30 YOLO boxes and one recorded label problem."""
    db = tmp / "coco8.db"
    folders = copy_coco8(tmp)
    scan(db, {s: [f] for s, f in folders.items()}, workers=1)
    for split, folder in folders.items():
        add_yolo_labels(db, split, folder, tmp / "coco8" / "labels" / split)
    add_problem(db, "val", str(tmp / "coco8" / "labels" / "val" / "broken.txt"), "malformed_row")
    return db


def make_image(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, colour)
    for x in range(0, size[0], 7):  # some structure, so that dHashes differ between images
        img.paste(tuple(255 - c for c in colour), (x, (x * 3) % size[1], x + 3, (x * 3) % size[1] + 5))
    img.save(path)
    return path


def classification_index(tmp: Path) -> Path:
    """Class-per-folder images (cats large, dogs small) in train and val, with their labels."""
    db = tmp / "pets.db"
    sizes = {"cat": (400, 300), "dog": (120, 90)}
    roots = {}
    for split, n in (("train", 3), ("val", 2)):
        roots[split] = tmp / "pets" / split
        for cls, size in sizes.items():
            for i in range(n):
                colour = (40 * i + 20, 200 - 30 * i, 90 if cls == "cat" else 160)
                make_image(roots[split] / cls / f"{cls}{i}.png", (size[0] + 10 * i, size[1] + 10 * i), colour)
    scan(db, {s: [r] for s, r in roots.items()}, workers=1)
    conn = sqlite3.connect(db)
    conn.executescript(LABEL_DDL)
    if not conn.execute("SELECT count(*) FROM labels").fetchone()[0]:
        with conn:
            for split, root in roots.items():
                for cls_id, cls in enumerate(sizes):
                    cur = conn.execute(
                        "INSERT INTO label_files (split, path, format) VALUES (?, ?, 'folders')", (split, str(root / cls))
                    )
                    for image in sorted((root / cls).glob("*.png")):
                        conn.execute(
                            "INSERT INTO labels (label_file_id, split, image_path, class_id, class_name) VALUES (?, ?, ?, ?, ?)",
                            (cur.lastrowid, split, str(image.resolve()), cls_id, cls),
                        )
    conn.close()
    return db
