"""A file belongs to every split whose folders hold it: one folder named for two splits, nested folders."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import DATA, invoke, sql_rows

VAL = DATA / "coco8" / "images" / "val"
IMAGES = DATA / "coco8" / "images"


def counts(db: Path) -> dict[str, int]:
    rows = sql_rows(db, "select split, count(*) n from images group by split")
    return {r["split"]: r["n"] for r in rows}


def test_one_folder_named_for_two_splits_fills_both(db: Path) -> None:
    out = invoke("scan", "--db", str(db), f"train={VAL}", f"val={VAL}", "-q").output
    assert out.startswith("8 new")
    assert counts(db) == {"train": 4, "val": 4}
    doc = json.loads(invoke("duplicates", "--db", str(db), "--json").output)
    (pair,) = doc["intersections"]
    assert pair["splits"] == ["train", "val"]
    assert sorted(len(g) for g in pair["groups"]) == [2, 2, 2, 2]  # every image is in both splits
    assert {k["kind"] for k in pair["kinds"]} == {"byte-identical"}


def test_nested_folders_keep_each_split_whole(db: Path) -> None:
    invoke("scan", "--db", str(db), f"all={IMAGES}", f"val={VAL}", "-q")
    assert counts(db) == {"all": 8, "val": 4}
    again = invoke("scan", "--db", str(db), f"all={IMAGES}", f"val={VAL}", "-q").output
    assert again.startswith("0 new, 0 changed, 12 unchanged")


def test_a_yolo_split_is_read_as_yolo_beside_a_custom_split(db: Path, tmp_path: Path) -> None:
    """The answers given for a custom layout apply to custom splits only."""
    import shutil

    from PIL import Image

    custom = tmp_path / "custom"
    (custom / "labels").mkdir(parents=True)
    shutil.copytree(VAL, custom / "images")
    for image in sorted((custom / "images").glob("*.jpg")):
        width, height = Image.open(image).size
        row = f"{width // 4} {height // 4} {width // 2} {height // 2} 3"  # x1 y1 x2 y2 class, pixels
        (custom / "labels" / f"{image.stem}.txt").write_text(row + "\n")
    invoke("scan", "--db", str(db), f"c={custom}", "--box-first", "--bbox-format", "xyxy", "-q")
    yolo = DATA / "coco8" / "images" / "train"
    alone = tmp_path / "alone.db"
    invoke("scan", "--db", str(alone), f"t={yolo}", "-q")
    invoke("scan", "--db", str(db), f"t={yolo}", f"c={custom}", "-q")  # the stored answers apply to c
    query = "select image_path, class_id, round(cx, 6) cx, round(w, 6) w from labels where split = 't' order by 1, 2, 3"
    assert sql_rows(db, query) == sql_rows(alone, query)
    boxes = sql_rows(db, "select class_id, round(w, 4) w from labels where split = 'c'")
    assert {b["class_id"] for b in boxes} == {3} and all(abs(b["w"] - 0.25) < 0.01 for b in boxes)
