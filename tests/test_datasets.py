"""`imgindex scan` from a dataset's own definition: a YOLO data.yaml in each of its forms, a
Roboflow-style root (YOLO or COCO), a Pascal VOC root; --names; a hint when labels lie unread."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from conftest import DATA, invoke, sql_rows

RUBY = DATA / "rubyrizz_yolo"  # Roboflow YOLO export: data.yaml says train: data/train/images
CHESS = DATA / "chess_coco"  # Roboflow COCO export: train/valid/test with _annotations.coco.json
BCCD = DATA / "bccd_voc"  # VOC root: ImageSets/Main/{train,val,test,trainval}.txt
COCO8 = DATA / "coco8"  # YOLO layout without a names file


def images_per_split(db: Path) -> dict[str, int]:
    rows = sql_rows(db, "select split, count(*) n from images group by split")
    return {r["split"]: r["n"] for r in rows}


def labels_per_split(db: Path) -> dict[str, int]:
    rows = sql_rows(db, "select split, count(*) n from labels group by split")
    return {r["split"]: r["n"] for r in rows}


def names_in_use(db: Path) -> set[str]:
    rows = sql_rows(
        db,
        "select distinct c.name from labels l join classes c on c.split = l.split and c.class_id = l.class_id "
        "where l.split = 'val'",
    )
    return {r["name"] for r in rows}


def scan(db: Path, *args: str) -> str:
    return invoke("scan", "--db", str(db), "-q", *args).output


def test_a_roboflow_data_yaml_gives_each_split_its_images_labels_and_names(tmp_path: Path) -> None:
    db = tmp_path / "ruby.db"
    out = scan(db, str(RUBY / "data.yaml"))
    assert "Splits from the YOLO dataset file" in out and "'data/train/images' read as 'train/images'" in out
    assert images_per_split(db) == {"train": 2, "val": 2, "test": 1}
    assert set(labels_per_split(db)) == {"train", "val", "test"}
    names = {r["name"] for r in sql_rows(db, "select distinct name from classes")}
    assert names >= {"Blue", "Green", "Orange", "Red", "White", "Yellow"}
    assert scan(db, str(RUBY)).count("0 new") == 1  # the root names the same dataset: nothing new
    relative = os.path.relpath(RUBY / "data.yaml")  # the same file, typed another way
    assert "labels: 0 files read" in scan(db, relative)
    paths = {r["path"] for r in sql_rows(db, "select path from label_files where path like '%data.yaml'")}
    assert paths == {str(RUBY / "data.yaml")}


def test_a_data_yaml_with_a_root_lists_of_folders_and_txt_lists(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(RUBY, root)
    valid = sorted((root / "valid" / "images").iterdir())
    (root / "lists").mkdir()
    (root / "lists" / "val.txt").write_text(f"./../valid/images/{valid[0].name}\n\n# a comment\n")
    (tmp_path / "custom.yaml").write_text(
        "path: ds\ntrain: [train/images, test/images]\nval: lists/val.txt\nnames: {0: a, 1: b, 2: c, 3: d, 4: e, 5: f}\n"
    )
    db = tmp_path / "custom.db"
    out = scan(db, str(tmp_path / "custom.yaml"))
    assert "train (2 folders), val (1 folder, 1 images listed)" in out
    assert images_per_split(db) == {"train": 3, "val": 1}
    (root / "lists" / "val.txt").write_text(f"valid/images/{valid[1].name}\n")  # relative to the root this time
    scan(db, str(tmp_path / "custom.yaml"))
    [row] = sql_rows(db, "select rel_path from images where split = 'val'")
    assert row["rel_path"] == valid[1].name
    (root / "lists" / "val.txt").write_text(f"valid/images/{valid[1].name}\nvalid/images/gone.jpg\n./nowhere.png\n")
    out = scan(db, str(tmp_path / "custom.yaml"))
    gone, nowhere = root / "valid" / "images" / "gone.jpg", root / "lists" / "nowhere.png"
    assert f"val: 2 of the 3 images val.txt lists are missing: {nowhere}, {gone}." in out


def test_a_roboflow_coco_root_and_a_voc_root(tmp_path: Path) -> None:
    db = tmp_path / "chess.db"
    assert "Splits from the split folders of" in scan(db, str(CHESS))
    assert images_per_split(db) == {"train": 3, "valid": 3, "test": 3}
    assert all(n > 0 for n in labels_per_split(db).values())
    voc = tmp_path / "voc.db"
    assert "Splits from the Pascal VOC lists" in scan(voc, str(BCCD))
    assert images_per_split(voc) == {"train": 3, "val": 2, "test": 2}  # trainval left out


def test_names_from_a_file_given_on_the_command_line(tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"class{i}" for i in range(80)))
    db = tmp_path / "coco8.db"
    scan(db, "--names", str(names), f"val={COCO8 / 'images' / 'val'}")
    used = names_in_use(db)
    assert used and all(n.startswith("class") for n in used)
    assert not sql_rows(db, "select * from label_problems where kind = 'unnamed_class'")
    coco_names = tmp_path / "cats.json"
    coco_names.write_text(json.dumps({"categories": [{"id": i, "name": f"cat{i}"} for i in range(80)]}))
    scan(db, "--names", str(coco_names), f"val={COCO8 / 'images' / 'val'}")
    used = names_in_use(db)
    assert used and all(n.startswith("cat") for n in used)


def test_a_split_without_labels_beside_label_like_files_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    shutil.copytree(BCCD / "JPEGImages", folder)
    (tmp_path / "boxes").mkdir()
    for xml in (BCCD / "Annotations").glob("*.xml"):
        shutil.copy(xml, tmp_path / "boxes" / xml.name)
    (tmp_path / "boxes" / "extra.TXT").write_text("0 0.5 0.5 0.1 0.1\n")  # counted, as .txt
    (tmp_path / "boxes" / "README.txt").write_text("about the boxes")  # a note, not a label
    (tmp_path / "boxes" / ".json").write_text("{}")  # a hidden file with no suffix
    (tmp_path / "boxes" / "more.xml").mkdir()  # a folder named like a label file
    out = scan(tmp_path / "hint.db", f"train={folder}")
    xml = len(list((BCCD / "Annotations").glob("*.xml")))
    assert f"train: no labels found, but {xml} .xml, 1 .txt file(s) lie in {tmp_path / 'boxes'}" in out


def test_a_definition_that_cannot_be_followed_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "data.yaml"
    bad.write_text("train: nowhere/images\n")
    result = invoke("scan", "--db", str(tmp_path / "x.db"), str(bad), ok=False)
    assert result.exit_code == 1 and "train 'nowhere/images' is neither a folder nor a .txt list" in result.output
    assert len(result.output.strip().splitlines()) == 1
    empty = tmp_path / "empty.yaml"
    empty.write_text("names: [a]\n")
    result = invoke("scan", "--db", str(tmp_path / "x.db"), str(empty), ok=False)
    assert "no train, val or test entry" in result.output
    numbered = tmp_path / "numbered.yaml"
    numbered.write_text(f"train: {RUBY / 'train' / 'images'}\nnames: 5\n")
    out = invoke("scan", "--db", str(tmp_path / "n.db"), "-q", str(numbered)).output
    assert "names: '5' is no list or mapping of class names, not used; write names: [cat, dog]" in out
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [a, b\nval: c\n")
    result = invoke("scan", "--db", str(tmp_path / "x.db"), str(broken), ok=False)
    assert f"cannot read {broken}: expected ',' or ']', but got ':' at line 2, column 4" in result.output


def test_a_yaml_alias_bomb_is_refused_in_one_line(tmp_path: Path) -> None:
    bomb = tmp_path / "data.yaml"
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    bomb.write_text("\n".join(levels) + "\ntrain: [*a8]\n")
    result = invoke("scan", "--db", str(tmp_path / "x.db"), str(bomb), ok=False)
    assert result.exit_code == 1 and "train holds lists" in result.output


def test_watch_refuses_a_dataset_file_with_image_lists_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(RUBY, root)
    image = next((root / "valid" / "images").iterdir())
    (root / "val.txt").write_text(f"valid/images/{image.name}\n")
    (root / "lists.yaml").write_text("train: train/images\nval: val.txt\n")
    result = invoke("watch", "--db", str(tmp_path / "w.db"), str(root / "lists.yaml"), ok=False)
    assert result.exit_code == 1 and "watch follows folders" in result.output
    assert len(result.output.strip().splitlines()) == 1
