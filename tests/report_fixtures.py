"""Indexes for the report tests: real images and labels, scanned by the real scanner."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from conftest import DATA
from PIL import Image

from imgindex.scan import scan

COCO8 = DATA / "coco8"
# COCO-80 names of the classes used in coco8, which ships no names file (its YOLO files hold ids only).
COCO_NAMES = {
    0: "person",
    16: "dog",
    17: "horse",
    20: "elephant",
    22: "zebra",
    23: "giraffe",
    25: "umbrella",
    45: "bowl",
    49: "orange",
    50: "broccoli",
    58: "potted plant",
    75: "vase",
}
# The 80 class names of COCO, in the order of their YOLO ids (Ultralytics' coco128.yaml).
_COCO80 = (
    "person,bicycle,car,motorcycle,airplane,bus,train,truck,boat,traffic light,fire hydrant,"
    "stop sign,parking meter,bench,bird,cat,dog,horse,sheep,cow,elephant,bear,zebra,giraffe,"
    "backpack,umbrella,handbag,tie,suitcase,frisbee,skis,snowboard,sports ball,kite,baseball bat,"
    "baseball glove,skateboard,surfboard,tennis racket,bottle,wine glass,cup,fork,knife,spoon,bowl,"
    "banana,apple,sandwich,orange,broccoli,carrot,hot dog,pizza,donut,cake,chair,couch,potted plant,"
    "bed,dining table,toilet,tv,laptop,mouse,remote,keyboard,cell phone,microwave,oven,toaster,sink,"
    "refrigerator,book,clock,vase,scissors,teddy bear,hair drier,toothbrush"
)
COCO80 = _COCO80.split(",")
MALFORMED_ROW = "3 0.5 0.5\n"  # a YOLO row with 3 numbers instead of 5


def yolo_rows(label_file: Path) -> list[list[float]]:
    """The well-formed rows of a YOLO label file."""
    rows = []
    for line in label_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 5:
            rows.append([float(p) for p in parts])
    return rows


def name_classes(db: Path, names: dict[int, str]) -> None:
    """Give class ids names, as a data.yaml beside the labels would."""
    conn = sqlite3.connect(db)
    with conn:
        for split in [r[0] for r in conn.execute("SELECT DISTINCT split FROM labels")]:
            conn.executemany(
                "INSERT INTO classes VALUES (?, ?, ?) ON CONFLICT (split, class_id) DO UPDATE SET name = excluded.name",
                [(split, k, v) for k, v in names.items()],
            )
    conn.close()


def detection_index(tmp: Path) -> Path:
    """coco8 train/val with its YOLO labels, plus one malformed row in a val label file."""
    db = tmp / "coco8.db"
    shutil.copytree(COCO8, tmp / "coco8")
    broken = sorted((tmp / "coco8" / "labels" / "val").glob("*.txt"))[0]
    broken.write_text(broken.read_text() + MALFORMED_ROW)
    scan(db, {s: [tmp / "coco8" / "images" / s] for s in ("train", "val")}, workers=1)
    name_classes(db, COCO_NAMES)
    return db


def make_image(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, colour)
    for x in range(0, size[0], 7):  # some structure, so that dHashes differ between images
        img.paste(tuple(255 - c for c in colour), (x, (x * 3) % size[1], x + 3, (x * 3) % size[1] + 5))
    img.save(path)
    return path


def classification_index(tmp: Path) -> Path:
    """Class-per-folder images (cats large, dogs small) in train and val."""
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
    return db
