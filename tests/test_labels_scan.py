"""Labels through `imgindex scan`, end to end, on vendored real datasets of each format."""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DATA, invoke, run_imgindex, sql_rows
from PIL import Image

from imgindex.cli import cli

COCO8 = DATA / "coco8"
RUBY = DATA / "rubyrizz_yolo"
CHESS = DATA / "chess_coco"
BCCD = DATA / "bccd_voc"
RACCOON = DATA / "raccoon_voc"


def label_line(output: str) -> dict[str, int]:
    """'...; labels: 8 files read, 0 unchanged, 0 removed; 30 labels, 2 problems' -> counts."""
    text = output.strip().splitlines()[-1].split("labels: ", 1)[1].replace(";", ",")
    return {" ".join(p.split()[1:]): int(p.split()[0]) for p in text.split(", ")}


def count_rows(folder: Path) -> int:
    return sum(len([ln for ln in p.read_text().splitlines() if ln.strip()]) for p in folder.glob("*.txt"))


def problems(db: Path, kind: str | None = None) -> list[dict[str, object]]:
    where = f"where kind = '{kind}'" if kind else ""
    return sql_rows(db, f"select split, path, line, kind, detail from label_problems {where} order by path, line")


def test_yolo_ultralytics_layout_without_names(db: Path) -> None:
    result = invoke("scan", "--db", str(db), f"train={COCO8 / 'images/train'}", f"val={COCO8 / 'images/val'}")
    counts = label_line(result.output)
    assert counts["files read"] == 8 and counts["labels"] == 30
    rows = sql_rows(
        db,
        "select split, count(*) n, count(distinct image_path) images, sum(class_name is null) unnamed "
        "from labels group by split",
    )
    assert rows == [
        {"split": "train", "n": count_rows(COCO8 / "labels/train"), "images": 4, "unnamed": 13},
        {"split": "val", "n": count_rows(COCO8 / "labels/val"), "images": 4, "unnamed": 17},
    ]
    # coco8 ships no data.yaml: one split-level problem each, no per-row noise
    assert [(p["split"], p["kind"]) for p in problems(db)] == [("train", "unnamed_class"), ("val", "unnamed_class")]
    assert sql_rows(db, "select value from settings where key = 'labels.format.train'") == [{"value": "yolo"}]


def test_yolo_boxes_match_the_file_and_the_image_size(db: Path) -> None:
    invoke("scan", "--db", str(db), f"train={COCO8 / 'images/train'}")
    image = COCO8 / "images/train/000000000009.jpg"
    width, height = Image.open(image).size
    first = (COCO8 / "labels/train/000000000009.txt").read_text().split("\n")[0].split()
    cls, cx, cy, w, h = int(first[0]), *map(float, first[1:])
    row = sql_rows(db, f"select * from labels where image_path = '{image.resolve()}' order by id limit 1")[0]
    assert (row["class_id"], row["cx"], row["cy"], row["w"], row["h"]) == (cls, cx, cy, w, h)
    assert row["x1"] == pytest.approx((cx - w / 2) * width) and row["y2"] == pytest.approx((cy + h / 2) * height)
    assert row["area"] == pytest.approx(w * h)


def test_roboflow_yolo_with_data_yaml(db: Path) -> None:
    splits = [f"{s}={RUBY / s}" for s in ("train", "valid", "test")]
    result = invoke("scan", "--db", str(db), *splits)
    assert label_line(result.output)["problems"] == 0
    rows = sql_rows(db, "select split, count(*) n from labels group by split order by split")
    assert rows == [{"split": s, "n": count_rows(RUBY / s / "labels")} for s in ("test", "train", "valid")]
    names = sql_rows(db, "select class_id, name from classes where split = 'valid' order by class_id")
    assert [r["name"] for r in names] == ["Blue", "Green", "Orange", "Red", "White", "Yellow"]
    unnamed = sql_rows(db, "select count(*) n from labels where class_name is null")
    assert unnamed == [{"n": 0}]
    # the names file is tracked with the label files, boxes have pixels from the image sizes
    assert sql_rows(db, "select count(*) n from labels where x1 is null") == [{"n": 0}]


def test_coco_roboflow_export(db: Path) -> None:
    splits = [f"{s}={CHESS / s}" for s in ("train", "valid", "test")]
    invoke("scan", "--db", str(db), *splits)
    for split in ("train", "valid", "test"):
        data = json.loads((CHESS / split / "_annotations.coco.json").read_text())
        rows = sql_rows(
            db, f"select class_id, class_name, x1, y1, x2, y2 from labels where split = '{split}' order by id"
        )
        assert len(rows) == len(data["annotations"])
        ann = data["annotations"][0]
        x, y, w, h = ann["bbox"]
        assert (rows[0]["x1"], rows[0]["y1"], rows[0]["x2"], rows[0]["y2"]) == (x, y, x + w, y + h)
        names = {c["id"]: c["name"] for c in data["categories"]}
        assert rows[0]["class_name"] == names[ann["category_id"]]
    # the stray class 'bishop' (id 1) is there with its one box
    assert sql_rows(db, "select split, count(*) n from labels where class_name = 'bishop' group by split") == [
        {"split": "train", "n": 1}
    ]
    assert problems(db) == []
    classes = sql_rows(db, "select count(*) n from classes where split = 'valid'")
    assert classes == [{"n": len(data["categories"])}]


def test_voc_image_sets_name_the_images_of_each_split(db: Path) -> None:
    result = invoke("scan", "--db", str(db), *(f"{s}={BCCD}" for s in ("train", "val", "test")))
    ids = {s: (BCCD / "ImageSets/Main" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    images = sql_rows(db, "select split, rel_path from images order by split, rel_path")
    assert {(r["split"], Path(r["rel_path"]).stem) for r in images} == {(s, i) for s, v in ids.items() for i in v}
    objects = sum(len(ET.parse(BCCD / "Annotations" / f"{i}.xml").findall("object")) for v in ids.values() for i in v)
    assert label_line(result.output)["labels"] == objects
    zero = problems(db, "zero_area_box")
    assert [(p["split"], Path(str(p["path"])).name) for p in zero] == [
        ("val", "BloodImage_00338.xml"),
        ("train", "BloodImage_00343.xml"),
    ]
    names = sql_rows(db, "select distinct class_id, name from classes order by class_id")
    assert [r["name"] for r in names] == ["Platelets", "RBC", "WBC"]  # one id per name across splits
    assert sql_rows(db, "select count(*) n from labels where class_id is null") == [{"n": 0}]


def test_voc_beside_images_folder(db: Path) -> None:
    invoke("scan", "--db", str(db), f"all={RACCOON / 'images'}")
    rows = sql_rows(
        db,
        "select l.image_path, l.x1, l.x2, l.w, i.width from labels l join images i on "
        "i.path = l.image_path order by l.image_path",
    )
    assert len(rows) == 3
    for row in rows:
        xml = ET.parse(RACCOON / "annotations" / (Path(str(row["image_path"])).stem + ".xml"))
        xmin, xmax = float(xml.findtext(".//xmin") or 0), float(xml.findtext(".//xmax") or 0)
        assert (row["x1"], row["x2"]) == (xmin, xmax)
        assert row["w"] == pytest.approx((xmax - xmin) / int(row["width"]))  # type: ignore[arg-type]


def make_image(path: Path, size: tuple[int, int] = (100, 50)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (len(path.name) * 20 % 255, 90, 30)).save(path)
    return path


def problem_dataset(root: Path) -> Path:
    """A YOLO split with one of each problem, written by hand."""
    images, labels = root / "images", root / "labels"
    for stem in ("good", "bad", "orphanless", "nolabel"):
        make_image(images / f"{stem}.png")
    labels.mkdir(parents=True)
    (root / "data.yaml").write_text("names: [cat, dog]\n")
    (labels / "good.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.25 0.25 0.1 0.1\n")
    (labels / "bad.txt").write_text(
        "0 0.5 0.5 0.2\n"  # 1: four values
        "x 0.5 0.5 0.2 0.2\n"  # 2: not numbers
        "0 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3\n"  # 3: polygon
        "7 0.5 0.5 0.2 0.2\n"  # 4: class without a name
        "1 0.95 0.5 0.2 0.2\n"  # 5: reaches past the right edge
        "0 0.5 0.5 0 0.2\n"  # 6: zero width
        "1.5 0.5 0.5 0.2 0.2\n"  # 7: fractional class id
    )
    (labels / "orphanless.txt").write_text("")  # empty: a background image, not a problem
    (labels / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # no image
    return root


def test_problem_labels_are_recorded_never_fatal(db: Path, tmp_path: Path) -> None:
    root = problem_dataset(tmp_path / "train")
    result = invoke("scan", "--db", str(db), f"train={root}")
    found = {(Path(str(p["path"])).name, p["line"], p["kind"]) for p in problems(db)}
    assert found == {
        ("bad.txt", 1, "malformed_row"),
        ("bad.txt", 2, "malformed_row"),
        ("bad.txt", 3, "polygon_row"),
        ("bad.txt", 4, "unnamed_class"),
        ("bad.txt", 5, "box_outside_image"),
        ("bad.txt", 6, "zero_area_box"),
        ("bad.txt", 7, "malformed_row"),
        ("ghost.txt", None, "label_without_image"),
        ("nolabel.png", None, "image_without_label"),
    }
    assert label_line(result.output)["problems"] == len(found)
    # rows 3-6 are still indexed (the polygon by its bounding box), plus good's 2 and ghost's 1
    assert sql_rows(db, "select count(*) n from labels") == [{"n": 4 + 2 + 1}]
    polygon = sql_rows(
        db,
        "select x1, y1, x2, y2 from labels where label_file_id = "
        "(select id from label_files where path like '%bad.txt') order by id limit 1",
    )
    assert polygon == [
        {"x1": pytest.approx(10.0), "y1": pytest.approx(5.0), "x2": pytest.approx(30.0), "y2": pytest.approx(15.0)}
    ]
    assert sql_rows(
        db,
        "select image_path from labels where label_file_id = (select id from label_files where path like '%ghost.txt')",
    ) == [{"image_path": None}]


def test_rescan_reads_only_changed_label_files(db: Path, tmp_path: Path) -> None:
    root = tmp_path / "coco8"
    shutil.copytree(COCO8, root)
    args = ("scan", "--db", str(db), f"train={root / 'images/train'}", f"val={root / 'images/val'}", "-q")
    first = label_line(invoke(*args).output)
    assert (first["files read"], first["labels"]) == (8, 30)
    assert label_line(invoke(*args).output)["files read"] == 0

    changed = root / "labels/train/000000000009.txt"
    rows = changed.read_text().splitlines()
    changed.write_text("\n".join(rows[:2]) + "\n")  # fewer boxes
    os.utime(changed, ns=(1, 1))
    (root / "labels/train/000000000025.txt").unlink()  # label file deleted
    (root / "images/val/000000000036.jpg").unlink()  # image deleted: its label is now an orphan
    second = label_line(invoke(*args).output)
    assert (second["files read"], second["removed"], second["unchanged"]) == (2, 1, 5)
    by_file = {
        Path(str(r["path"])).name: r["n"]
        for r in sql_rows(
            db,
            "select f.path, count(l.id) n from label_files f left join labels l on l.label_file_id = f.id group by f.id",
        )
    }
    assert by_file["000000000009.txt"] == 2 and "000000000025.txt" not in by_file
    kinds = {(Path(str(p["path"])).name, p["kind"]) for p in problems(db) if p["kind"] != "unnamed_class"}
    assert kinds == {("000000000025.jpg", "image_without_label"), ("000000000036.txt", "label_without_image")}

    make_image(root / "images/val/000000000036.jpg", (200, 100))  # the image comes back, other size
    invoke(*args)
    row = sql_rows(db, "select max(x2) x2 from labels where image_path like '%000000000036.jpg'")[0]
    assert row["x2"] is not None and float(row["x2"]) <= 200  # type: ignore[arg-type]
    assert not [p for p in problems(db) if p["kind"] == "label_without_image"]


def test_scan_of_one_split_leaves_the_others(db: Path) -> None:
    invoke("scan", "--db", str(db), f"train={COCO8 / 'images/train'}", f"val={COCO8 / 'images/val'}")
    before = sql_rows(db, "select * from labels where split = 'val' order by id")
    invoke("scan", "--db", str(db), "--labels", "none", f"train={COCO8 / 'images/train'}")
    assert sql_rows(db, "select count(*) n from labels where split = 'train'") == [{"n": 0}]
    assert sql_rows(db, "select * from labels where split = 'val' order by id") == before
    # --labels is remembered for the split: the next plain scan keeps it label-free
    invoke("scan", "--db", str(db), f"train={COCO8 / 'images/train'}")
    assert sql_rows(db, "select count(*) n from labels where split = 'train'") == [{"n": 0}]


def test_class_folders(db: Path, tmp_path: Path) -> None:
    root = tmp_path / "train"
    for cls, n in (("cat", 2), ("dog", 3)):
        for i in range(n):
            make_image(root / cls / f"{cls}{i}.png")
    invoke("scan", "--db", str(db), f"train={root}")
    rows = sql_rows(db, "select class_name, count(*) n, max(cx) cx from labels group by class_name order by 1")
    assert rows == [{"class_name": "cat", "n": 2, "cx": None}, {"class_name": "dog", "n": 3, "cx": None}]
    make_image(root / "dog" / "dog9.png")
    (root / "cat" / "cat0.png").unlink()
    invoke("scan", "--db", str(db), f"train={root}")
    rows = sql_rows(db, "select class_name, count(*) n from labels group by class_name order by 1")
    assert rows == [{"class_name": "cat", "n": 1}, {"class_name": "dog", "n": 4}]


def test_explicit_coco_file_and_misuse(db: Path, tmp_path: Path) -> None:
    images = tmp_path / "imgs"
    shutil.copytree(CHESS / "valid", images)
    ann = images / "_annotations.coco.json"
    moved = tmp_path / "my_labels.json"
    ann.rename(moved)
    invoke("scan", "--db", str(db), f"valid={images}", "--coco", str(moved))
    assert sql_rows(db, "select count(*) n from labels") == [{"n": len(json.loads(moved.read_text())["annotations"])}]
    bad = invoke("scan", "--db", str(db), f"x={tmp_path / 'imgs'}", "--labels", "voc", ok=False)
    assert bad.exit_code != 0 and "--labels voc" in bad.output and "Annotations" in bad.output


def custom_dataset(root: Path) -> Path:
    """Rows of 5 numbers in pixels, box first: x1 y1 x2 y2 class."""
    make_image(root / "images" / "a.png", (200, 100))
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "a.txt").write_text("20 10 120 60 3\n0 0 200 100 1\n")
    return root


def test_rows_without_convention_need_answers(db: Path, tmp_path: Path) -> None:
    root = custom_dataset(tmp_path / "train")
    refused = invoke("scan", "--db", str(db), f"train={root}", ok=False)
    assert refused.exit_code != 0
    assert "--label-first or --box-first" in refused.output and "--bbox-format" in refused.output
    assert "20 10 120 60 3" in refused.output  # the sample row is shown
    invoke("scan", "--db", str(db), f"train={root}", "--box-first", "--bbox-format", "xyxy")
    rows = sql_rows(db, "select class_id, cx, cy, w, h, area from labels order by id")
    assert rows[0] == {"class_id": 3, "cx": 0.35, "cy": 0.35, "w": 0.5, "h": 0.5, "area": 0.25}
    assert rows[1]["area"] == 1.0
    stored = {r["key"]: r["value"] for r in sql_rows(db, "select * from settings where key like 'labels.%'")}
    assert stored["labels.label_first"] == "false" and stored["labels.bbox_format"] == "xyxy"
    assert stored["labels.format.train"] == "custom"
    # the next scan reuses the stored answers: no flags, no question
    (root / "labels" / "a.txt").write_text("20 10 120 60 3\n")
    invoke("scan", "--db", str(db), f"train={root}")
    assert sql_rows(db, "select count(*) n from labels") == [{"n": 1}]


def test_questions_are_asked_on_a_terminal(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = custom_dataset(tmp_path / "train")
    monkeypatch.setattr("imgindex.cli.interactive", lambda: True)
    result = CliRunner().invoke(cli, ["scan", "--db", str(db), f"train={root}"], input="1\n0\n")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Which comes first in your annotations, the class id or the bounding box?" in out
    assert "Great! You chose: Bounding box comes first" in out and "What is the bounding box format?" in out
    assert "20 10 120 60 3" in out
    assert sql_rows(db, "select x1, y1, x2, y2 from labels order by id limit 1") == [
        {"x1": 20.0, "y1": 10.0, "x2": 120.0, "y2": 60.0}
    ]


def test_scan_with_labels_in_a_subprocess(db: Path) -> None:
    proc = run_imgindex("scan", "--db", str(db), *(f"{s}={RUBY / s}" for s in ("train", "valid", "test")))
    assert proc.returncode == 0, proc.stderr
    assert label_line(proc.stdout)["labels"] == sum(count_rows(RUBY / s / "labels") for s in ("train", "valid", "test"))
    refused = run_imgindex("scan", "--db", str(db), "--labels", "coco", f"train={RUBY / 'train'}")
    assert refused.returncode != 0 and "--coco FILE" in refused.stderr


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_questions_on_a_real_terminal(db: Path, tmp_path: Path) -> None:
    """`python -m imgindex scan` on a pseudo-terminal asks, reads the two numbers, stores the answers."""
    import select
    import subprocess
    import sys
    import time

    root = custom_dataset(tmp_path / "train")
    leader, follower = os.openpty()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "imgindex", "scan", "--db", str(db), "-q", f"train={root}"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60

    def read_until(prompts: int) -> bytes:
        """Everything the terminal shows, until `prompts` prompts were shown or the program ended."""
        out = seen
        while out.count(b">>>") < prompts and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.2)[0]:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the program ended
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        return out

    for number, answer in enumerate((b"1\n", b"0\n"), start=1):
        seen = read_until(number)
        os.write(leader, answer)
    seen = read_until(99)
    proc.wait(timeout=30)
    os.close(leader)
    text = seen.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "What is the bounding box format?" in text and "labels: 1 files read" in text
    stored = {r["key"]: r["value"] for r in sql_rows(db, "select * from settings where key like 'labels.%'")}
    assert (stored["labels.label_first"], stored["labels.bbox_format"]) == ("false", "xyxy")


def test_unreadable_coco_file_is_an_error_row_then_recovers(db: Path, tmp_path: Path) -> None:
    root = tmp_path / "valid"
    shutil.copytree(CHESS / "valid", root)
    good = (root / "_annotations.coco.json").read_text()
    (root / "_annotations.coco.json").write_text(good[: len(good) // 2])  # cut short
    result = invoke("scan", "--db", str(db), f"valid={root}")
    assert label_line(result.output)["labels"] == 0
    error = sql_rows(db, "select format, error from label_files")[0]
    assert error["format"] == "coco" and "not valid JSON" in str(error["error"])
    assert [p["kind"] for p in problems(db) if p["kind"] != "image_without_label"] == ["unreadable_file"]
    (root / "_annotations.coco.json").write_text(good)
    invoke("scan", "--db", str(db), f"valid={root}")
    assert sql_rows(db, "select error from label_files") == [{"error": None}]
    assert problems(db) == []
    assert sql_rows(db, "select count(*) n from labels") == [{"n": len(json.loads(good)["annotations"])}]


def test_changed_data_yaml_renames_classes(db: Path, tmp_path: Path) -> None:
    root = tmp_path / "ruby"
    shutil.copytree(RUBY, root)
    args = ("scan", "--db", str(db), f"valid={root / 'valid'}", "-q")
    invoke(*args)
    assert label_line(invoke(*args).output)["files read"] == 0
    yaml_text = (root / "data.yaml").read_text().replace("'Blue'", "'Navy'")
    (root / "data.yaml").write_text(yaml_text)
    second = label_line(invoke(*args).output)
    assert second["files read"] == len(list((root / "valid/labels").glob("*.txt"))) + 1  # every file, and the yaml
    assert sql_rows(db, "select name from classes where class_id = 0") == [{"name": "Navy"}]
    assert sql_rows(db, "select count(*) n from labels where class_name = 'Blue'") == [{"n": 0}]


def test_images_written_by_a_scan_killed_before_its_label_stage_are_caught_up(db: Path) -> None:
    import sqlite3

    args = ("scan", "--db", str(db), f"train={COCO8 / 'images/train'}", "-q")
    invoke(*args)
    image = str((COCO8 / "images/train/000000000009.jpg").resolve())
    before = sql_rows(db, f"select max(x2) x2 from labels where image_path = '{image}'")[0]["x2"]
    # as a scan killed after writing this image row (new size) and before its label stage would leave it
    with sqlite3.connect(db) as conn:
        conn.execute("update images set width = width * 2, scan_id = 999 where path = ?", [image])
    assert label_line(invoke(*args).output)["files read"] == 1
    after = sql_rows(db, f"select max(x2) x2 from labels where image_path = '{image}'")[0]["x2"]
    assert after == pytest.approx(2 * float(before))  # type: ignore[arg-type]


def test_images_removed_by_a_scan_killed_before_its_label_stage_are_caught_up(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removing an image leaves its label file as it was; if the scan dies before the label
    stage, the next scan (which sees no image change) must still notice."""
    import imgindex.scan as scan_module

    root = tmp_path / "coco8"
    shutil.copytree(COCO8, root)
    args = ("scan", "--db", str(db), f"train={root / 'images/train'}", "-q")
    invoke(*args)
    (root / "images/train/000000000009.jpg").unlink()

    def killed(*_: object) -> None:
        raise KeyboardInterrupt  # as a kill between the image stage and the label stage

    with monkeypatch.context() as patched:
        patched.setattr(scan_module, "index_split_labels", killed)
        CliRunner().invoke(cli, list(args))
    assert sql_rows(db, "select count(*) n from images") == [{"n": 3}]

    counts = label_line(invoke(*args).output)
    assert counts["files read"] == 1
    kinds = {(Path(str(p["path"])).name, p["kind"]) for p in problems(db)}
    assert ("000000000009.txt", "label_without_image") in kinds
    assert sql_rows(db, "select count(*) n from labels where image_path like '%000000000009.jpg'") == [{"n": 0}]
    assert label_line(invoke(*args).output)["files read"] == 0  # and then all is current


def test_warm_rescan_of_each_label_format_reads_nothing_and_keeps_every_row(db: Path) -> None:
    """A re-scan with nothing changed takes the short way (label files only stat-ed); what the
    index holds stays exactly the same, for every format."""
    splits = [f"yolo={COCO8 / 'images/train'}", f"coco={CHESS / 'valid'}", f"voc={RACCOON}"]
    first = invoke("scan", "--db", str(db), *splits, "-q")
    assert label_line(first.output)["files read"] > 0
    query = "select split, image_path, class_id, class_name, x1, y1, x2, y2 from labels order by id"
    labels, problem_rows = sql_rows(db, query), problems(db)
    again = label_line(invoke("scan", "--db", str(db), *splits, "-q").output)
    assert again["files read"] == 0 and again["removed"] == 0 and again["unchanged"] > 0
    assert sql_rows(db, query) == labels and problems(db) == problem_rows
