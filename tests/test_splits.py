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
