"""`imgindex duplicates`: DataGradients' groups and sentences, from the index's views."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import DATA, invoke, sql_rows

TRAIN = DATA / "coco128_sample" / "images" / "train2017"
VAL = DATA / "coco8" / "images" / "val"


def scan_leaky(db: Path, tmp_path: Path) -> tuple[Path, Path]:
    """train = 16 coco128 images plus a byte copy of one; val = coco8 val (2 re-encoded train images)."""
    train = tmp_path / "train"
    shutil.copytree(TRAIN, train)
    shutil.copy(train / "000000000025.jpg", train / "copy_of_25.jpg")
    invoke("scan", "--db", str(db), f"train={train}", f"val={VAL}", "-q")
    return train, VAL.resolve()


def test_json_has_the_documented_shape(db: Path, tmp_path: Path) -> None:
    train, val = scan_leaky(db, tmp_path)
    doc = json.loads(invoke("duplicates", "--db", str(db), "--json", "--max-distance", "0").output)
    copy = {"kind": "copy", "max_distance": 0}
    assert doc["rule"]["name"] == "imgindex" and doc["rule"]["max_distance"] == 0
    assert doc["rule"]["verification"] == "signature-v3"
    del doc["rule"]
    pairs = sorted(sorted([str(train / f"{n}.jpg"), str(val / f"{n}.jpg")]) for n in ("000000000036", "000000000049"))
    assert doc == {
        "max_distance": 0,
        "splits": {
            "train": {
                "images": 17,
                "groups": [[str(train / "000000000025.jpg"), str(train / "copy_of_25.jpg")]],
                "kinds": [{"kind": "byte-identical", "max_distance": 0}],
                "scenes": [],
            },
            "val": {"images": 4, "groups": [], "kinds": [], "scenes": []},
        },
        "intersections": [
            {
                "splits": ["train", "val"],
                "groups": pairs,  # every list sorted, wherever the folders are
                "kinds": [copy, copy],
                "members": [[1, 1], [1, 1]],
                "scenes": [],
                "scene_members": [],
            }
        ],
        "label_conflicts": [],
    }


def test_text_uses_datagradients_wording(db: Path, tmp_path: Path) -> None:
    scan_leaky(db, tmp_path)
    out = invoke("duplicates", "--db", str(db)).output
    assert "train: There are 1 duplicated images appearing 2 times across the dataset." in out
    assert "val: There are 0 duplicated images appearing 0 times across the dataset." in out
    assert (
        "There are 2 duplicates between train and val appearing 2 times in the train image directory, "
        "and 2 times in the val image directory." in out
    )


def test_groups_of_three_and_unreadable_files_left_out(db: Path) -> None:
    invoke("scan", "--db", str(db), f"dedup={DATA / 'imagededup'}", "-q")
    doc = json.loads(invoke("duplicates", "--db", str(db), "--json").output)
    groups = [[Path(p).name for p in g] for g in doc["splits"]["dedup"]["groups"]]
    assert ["ukbench00120.jpg", "ukbench00120_gray.jpg", "ukbench00120_resize.jpg"] in groups
    assert ["ukbench09380.bmp", "ukbench09380.webp"] in groups
    assert not any("corrupt" in name for g in groups for name in g)
    identical = sql_rows(db, "select n from identical_files")
    assert identical == []  # the fixture folder holds no byte-identical pair


def test_group_follows_a_removed_file(db: Path, tmp_path: Path) -> None:
    train, _ = scan_leaky(db, tmp_path)
    (train / "copy_of_25.jpg").unlink()
    (train / "000000000036.jpg").unlink()
    invoke("scan", "--db", str(db), f"train={train}", "-q")
    doc = json.loads(invoke("duplicates", "--db", str(db), "--json").output)
    assert doc["splits"]["train"]["groups"] == []
    assert len(doc["intersections"][0]["groups"]) == 1


def test_identical_files_view(db: Path, tmp_path: Path) -> None:
    train, _ = scan_leaky(db, tmp_path)
    rows = sql_rows(db, "select n, splits, paths from identical_files")
    assert len(rows) == 1 and rows[0]["n"] == 2 and rows[0]["splits"] == "train"
    assert sorted(json.loads(rows[0]["paths"])) == [str(train / "000000000025.jpg"), str(train / "copy_of_25.jpg")]
