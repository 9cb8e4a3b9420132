"""`imgindex export`: leak-free, de-duplicated splits written in YOLO, COCO, VOC or as a removal
list, round-tripped through scan and check; the original files untouched."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import DATA, SAMPLE_LABEL_GAPS, invoke, sql_rows
from PIL import Image

TRAIN = DATA / "coco128_sample"  # 16 coco128 photos with YOLO labels
VAL = DATA / "coco8"  # coco8: images/val holds 2 re-encodes of TRAIN photos
CHESS = DATA / "chess_coco"
BCCD = DATA / "bccd_voc"
QUIET = SAMPLE_LABEL_GAPS


def check_passes(db: Path, *args: str) -> str:
    result = invoke("check", "--db", str(db), *QUIET, *args, ok=False)
    assert result.exit_code == 0, result.output
    return result.output


def tree_digest(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def yolo_leak(tmp_path: Path) -> tuple[Path, Path]:
    """train (coco128 sample, with an extra resized copy inside it) and val (coco8's val) in YOLO
    layout under one root with a data.yaml."""
    root = tmp_path / "ds"
    shutil.copytree(TRAIN, root / "train")
    shutil.copytree(VAL / "images" / "val", root / "val" / "images")
    shutil.copytree(VAL / "labels" / "val", root / "val" / "labels")
    images = root / "train" / "images" / "train2017"
    with Image.open(images / "000000000030.jpg") as im:
        im.resize((im.width // 2, im.height // 2)).save(images / "small_030.jpg", quality=85)
    shutil.copy(
        root / "train" / "labels" / "train2017" / "000000000030.txt",
        root / "train" / "labels" / "train2017" / "small_030.txt",
    )
    names = "\n".join(f"  {i}: c{i}" for i in range(80))
    (root / "data.yaml").write_text(f"train: train/images/train2017\nval: val/images\nnames:\n{names}\n")
    db = tmp_path / "ds.db"
    invoke("scan", "--db", str(db), "-q", str(root / "data.yaml"))
    return root, db


def test_yolo_export_round_trips_through_scan_and_check(yolo_leak: tuple[Path, Path], tmp_path: Path) -> None:
    root, db = yolo_leak
    assert invoke("check", "--db", str(db), *QUIET, ok=False).exit_code == 1  # the leak and the duplicate
    before = tree_digest(root)
    out = tmp_path / "clean"
    text = invoke("export", "--db", str(db), str(out), "--format", "yolo").output
    assert "val: 2 kept, 2 removed" in text and "train: 16 kept, 1 removed" in text
    assert tree_digest(root) == before  # nothing of the dataset touched
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["train"] == "train.txt" and data["val"] == "val.txt" and data["names"][0] == "c0"
    removed = list(csv.DictReader((out / "removed.csv").open()))
    assert {(r["split"], Path(r["path"]).name) for r in removed} == {
        ("val", "000000000036.jpg"),
        ("val", "000000000049.jpg"),
        ("train", "small_030.jpg"),
    }
    assert all(r["reason"] for r in removed) and "which train keeps" in removed[-1]["reason"]
    again = tmp_path / "again.db"
    invoke("scan", "--db", str(again), "-q", str(out / "data.yaml"))
    assert "All 11 rules hold." in invoke("check", "--db", str(again)).output  # the defaults, all of them
    kept = sql_rows(again, "select split, count(*) n from images group by split")
    assert {r["split"]: r["n"] for r in kept} == {"train": 16, "val": 2}  # nothing lost the policy did not drop
    assert sql_rows(again, "select count(*) n from labels where split = 'val'")[0]["n"] > 0  # labels still found


def test_dry_run_writes_nothing_and_policies_move_the_leak(yolo_leak: tuple[Path, Path], tmp_path: Path) -> None:
    _, db = yolo_leak
    out = tmp_path / "none"
    text = invoke("export", "--db", str(db), str(out), "--dry-run").output
    assert "Dry run: nothing written." in text and not out.exists()
    dropped = json.loads(invoke("export", "--db", str(db), str(out), "--dry-run", "--leaks", "drop", "--json").output)
    assert dropped["splits"] == {"train": {"kept": 14, "removed": 3}, "val": {"kept": 2, "removed": 2}}
    val_keeps = invoke("export", "--db", str(db), str(out), "--dry-run", "--train-split", "val").output
    assert "val: 4 kept, 0 removed" in val_keeps and "train: 14 kept, 3 removed" in val_keeps
    labels = yolo_leak[0] / "train" / "labels" / "train2017" / "000000000030.txt"
    labels.write_text(labels.read_text() + "7 0.5 0.5\n")  # a malformed row: the large copy's labels now have a problem
    invoke("scan", "--db", str(db), "-q", str(yolo_leak[0] / "data.yaml"))
    by_size = json.loads(invoke("export", "--db", str(db), str(out), "--dry-run", "--json").output)
    by_problems = json.loads(
        invoke("export", "--db", str(db), str(out), "--dry-run", "--json", "--keep", "fewest-problems").output
    )
    assert [Path(r["path"]).name for r in by_size["removed"] if r["split"] == "train"] == ["small_030.jpg"]
    assert [Path(r["path"]).name for r in by_problems["removed"] if r["split"] == "train"] == ["000000000030.jpg"]


def test_a_labelled_copy_stays_before_a_larger_one_without_labels(yolo_leak: tuple[Path, Path], tmp_path: Path) -> None:
    """A PNG copy of a labelled photo, twice its size in pixels and many times in bytes, with no
    label file: whatever the policy, the export keeps the labelled one (the other would teach its
    objects as background)."""
    root, db = yolo_leak
    images = root / "train" / "images" / "train2017"
    with Image.open(images / "000000000025.jpg") as im:
        im.resize((im.width * 3 // 2, im.height * 3 // 2), Image.Resampling.LANCZOS).save(images / "big_025.png")
    invoke("scan", "--db", str(db), "-q", str(root / "data.yaml"))
    for keep in ("largest", "fewest-problems"):
        text = invoke("export", "--db", str(db), str(tmp_path / keep), "--dry-run", "--json", "--keep", keep).output
        removed = {Path(r["path"]).name: r["reason"] for r in json.loads(text)["removed"] if r["split"] == "train"}
        assert "000000000025.jpg" not in removed, removed
        assert removed["big_025.png"] == "duplicate of train:000000000025.jpg, kept as the labelled copy"


def test_unreadable_files_are_listed_as_left_out_with_the_scans_reason(
    yolo_leak: tuple[Path, Path], tmp_path: Path
) -> None:
    root, db = yolo_leak
    (root / "val" / "images" / "broken.jpg").write_bytes(b"not a picture")
    invoke("scan", "--db", str(db), "-q", str(root / "data.yaml"))
    text = invoke("export", "--db", str(db), str(tmp_path / "out")).output
    assert "val: 2 kept, 3 removed" in text and "1 unreadable" in text
    removed = {Path(r["path"]).name: r["reason"] for r in csv.DictReader((tmp_path / "out" / "removed.csv").open())}
    assert removed["broken.jpg"].startswith("unreadable: not an image")
    assert "broken.jpg" not in (tmp_path / "out" / "val.txt").read_text()


def test_a_yolo_list_leaves_out_names_it_cannot_hold_and_says_why(yolo_leak: tuple[Path, Path], tmp_path: Path) -> None:
    root, db = yolo_leak
    images = root / "val" / "images"
    with Image.open(images / "000000000042.jpg") as im:
        im.rotate(180).save(images / "two\nlines.jpg")
        im.rotate(90, expand=True).save(os.fsdecode(bytes(images) + b"/bad\xff.jpg"))
    invoke("scan", "--db", str(db), "-q", str(root / "data.yaml"))
    text = invoke("export", "--db", str(db), str(tmp_path / "out")).output
    assert "val: 2 kept, 4 removed" in text and "2 unnamable" in text
    reasons = {Path(r["path"]).name: r["reason"] for r in json.loads((tmp_path / "out" / "removed.json").read_text())}
    assert reasons["two\nlines.jpg"].startswith("not in the yolo export: its name holds a line break")
    assert reasons["bad\\xff.jpg"].startswith("not in the yolo export: its name is not UTF-8")
    listed = (tmp_path / "out" / "val.txt").read_text().splitlines()
    assert len(listed) == 2 and all(Path(line).is_file() for line in listed)
    as_list = json.loads(invoke("export", "--db", str(db), str(tmp_path / "l"), "--format", "list", "--json").output)
    assert as_list["splits"]["val"] == {"kept": 4, "removed": 2}  # a list names nothing: it keeps them


def test_coco_export_of_a_roboflow_root_round_trips(tmp_path: Path) -> None:
    root = tmp_path / "chess"
    shutil.copytree(CHESS, root)
    leaked = next((root / "test").glob("*.jpg"))
    shutil.copy(leaked, root / "train" / leaked.name)  # the same file in train: a byte-identical leak
    data = json.loads((root / "train" / "_annotations.coco.json").read_text())
    source = json.loads((root / "test" / "_annotations.coco.json").read_text())
    image = next(i for i in source["images"] if i["file_name"] == leaked.name)
    data["images"].append({**image, "id": 9999})
    data["annotations"] += [
        {**a, "id": 90000 + n, "image_id": 9999}
        for n, a in enumerate(source["annotations"])
        if a["image_id"] == image["id"]
    ]
    (root / "train" / "_annotations.coco.json").write_text(json.dumps(data))
    db = tmp_path / "chess.db"
    invoke("scan", "--db", str(db), "-q", str(root))
    assert invoke("check", "--db", str(db), ok=False).exit_code == 1
    out = tmp_path / "coco"
    invoke("export", "--db", str(db), str(out), "--format", "coco")
    test_json = json.loads((out / "test" / "_annotations.coco.json").read_text())
    assert leaked.name not in {i["file_name"] for i in test_json["images"]}
    assert all(a["image_id"] in {i["id"] for i in test_json["images"]} for a in test_json["annotations"])
    linked = next((out / "valid").glob("*.jpg"))  # a hard link: the file itself, inside the export
    assert not linked.is_symlink() and linked.stat().st_ino == (root / "valid" / linked.name).stat().st_ino
    again = tmp_path / "again.db"
    scanned = invoke("scan", "--db", str(again), str(out))
    assert "lead out of their split's folders" not in scanned.output  # serve sends its images
    check_passes(again)
    counts = {r["split"]: r["n"] for r in sql_rows(again, "select split, count(*) n from images group by split")}
    assert counts == {"train": 4, "valid": 3, "test": 2}
    assert sql_rows(again, "select count(*) n from labels where split = 'train'")[0]["n"] > 0


def test_voc_export_writes_image_sets_beside_links(tmp_path: Path) -> None:
    root = tmp_path / "bccd"
    shutil.copytree(BCCD, root)
    (root / "ImageSets" / "Main" / "test.txt").write_text(
        "BloodImage_00038\n" + (root / "ImageSets" / "Main" / "test.txt").read_text()
    )
    db = tmp_path / "bccd.db"
    invoke("scan", "--db", str(db), "-q", str(root))
    out = tmp_path / "voc"
    invoke("export", "--db", str(db), str(out), "--format", "voc")
    assert "BloodImage_00038" not in (out / "ImageSets" / "Main" / "test.txt").read_text()
    assert "BloodImage_00038" in (out / "ImageSets" / "Main" / "train.txt").read_text()
    again = tmp_path / "again.db"
    invoke("scan", "--db", str(again), "-q", str(out))
    check_passes(again, "--rule", "label-zero-area-box=off")


def test_list_export_and_misuse(yolo_leak: tuple[Path, Path], tmp_path: Path) -> None:
    _, db = yolo_leak
    out = tmp_path / "list"
    invoke("export", "--db", str(db), str(out), "--format", "list")
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "removed.csv", "removed.json"]
    assert json.loads((out / "export.json").read_text())["duplicate_rule"].startswith("imgindex rule")
    again = invoke("export", "--db", str(db), str(out), ok=False)
    assert again.exit_code == 1 and "is not an empty folder" in again.output
    wrong = invoke("export", "--db", str(db), str(tmp_path / "x"), "--train-split", "nope", ok=False)
    assert wrong.exit_code == 1 and "no split named 'nope'" in wrong.output
