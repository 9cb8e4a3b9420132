"""What the report says about labels: which boxes count, the dataset's classes, the label problems."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import DATA, invoke, sql_rows
from report_fixtures import COCO80, MALFORMED_ROW, yolo_rows
from test_report import feature, report

from imgindex import Index
from imgindex.scan import scan

COCO128 = DATA / "coco128_sample"
RUBYRIZZ = DATA / "rubyrizz_yolo"
ORPHANS = ("000000000656.txt", "000000000659.txt")  # coco128's label files without an image


def rows_with_image(label_dir: Path, image_dir: Path) -> list[list[float]]:
    """The rows of the label files whose image exists."""
    files = [t for t in sorted(label_dir.glob("*.txt")) if (image_dir / f"{t.stem}.jpg").is_file()]
    return [row for t in files for row in yolo_rows(t)]


def coco128_report(tmp: Path, names: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """coco128_sample scanned as train (with a data.yaml of `names` beside it when given): summary.json
    and the PDF's text."""
    shutil.copytree(COCO128, tmp / "coco128")
    if names is not None:
        (tmp / "coco128" / "data.yaml").write_text("names:\n" + "".join(f"  - {n}\n" for n in names))
    db = tmp / "coco128.db"
    scan(db, {"train": [tmp / "coco128" / "images" / "train2017"]}, workers=1)
    _, doc, text = report(db, tmp / "logs")
    return doc, text


def test_boxes_of_label_files_without_an_image_count_nowhere(tmp_path: Path) -> None:
    label_dir, image_dir = COCO128 / "labels" / "train2017", COCO128 / "images" / "train2017"
    assert all((label_dir / name).is_file() and not (image_dir / name).with_suffix(".jpg").exists() for name in ORPHANS)
    orphans = [row for name in ORPHANS for row in yolo_rows(label_dir / name)]
    kept = rows_with_image(label_dir, image_dir)
    doc, _ = coco128_report(tmp_path)
    summary = feature(doc, "SummaryStats")["stats"]["train"]
    assert summary["Annotations"] == len(kept) == 74  # not 86: the 12 boxes of the two orphans are left out
    expected = Counter(str(int(row[0])) for row in kept)
    frequency = feature(doc, "DetectionClassFrequency")["stats"]["train"]
    assert frequency == dict(expected)
    assert frequency["0"] == 19 and Counter(int(r[0]) for r in orphans)[0] == 7  # persons of the orphans left out
    sizes = feature(doc, "DetectionBoundingBoxSize")["stats"]["train"]
    assert sizes["width"]["count"] == len(kept)
    areas = feature(doc, "DetectionBoundingBoxArea")["stats"]["train"]
    assert sum(v["count"] for v in areas.values()) == len(kept)
    per_image = feature(doc, "DetectionBoundingBoxPerImageCount")["stats"]["train"]
    assert per_image["count"] == 16 and per_image["mean"] == round(len(kept) / 16, 2)
    assert summary["Label problems"] >= len(ORPHANS)


def test_classes_are_the_dataset_names_with_their_use(tmp_path: Path) -> None:
    kept = rows_with_image(COCO128 / "labels" / "train2017", COCO128 / "images" / "train2017")
    used = Counter(int(row[0]) for row in kept)
    doc, text = coco128_report(tmp_path, COCO80)
    summary = feature(doc, "SummaryStats")["stats"]["train"]
    assert summary["Classes"] == 80  # the names of data.yaml, not the 23 ids the labels use
    assert summary["Classes in use"] == len(used) == 23
    classes = feature(doc, "DatasetClasses")
    stats = classes["stats"]["train"]
    assert list(stats) == COCO80
    assert stats["person"] == {"id": 0, "annotations": used[0], "images": 5}
    assert stats["toothbrush"] == {"id": 79, "annotations": 0, "images": 0}
    assert {name for name, v in stats.items() if v["annotations"]} == {COCO80[i] for i in used}
    unused = [name for i, name in enumerate(COCO80) if i not in used]
    assert classes["notices"] == [f"57 of the 80 classes are in no label: {', '.join(unused[:10])} and 47 more."]
    flat = " ".join(text.split())
    assert "person (0) 19 / 5" in flat and "toothbrush (79) not in use" in flat
    assert feature(doc, "DetectionClassFrequency")["stats"]["train"]["person"] == used[0]


def test_classes_without_a_names_file_are_the_ids_used(tmp_path: Path) -> None:
    doc, _ = coco128_report(tmp_path)
    assert feature(doc, "SummaryStats")["stats"]["train"]["Classes"] == 23
    stats = feature(doc, "DatasetClasses")["stats"]["train"]
    assert stats["0"] == {"id": 0, "annotations": 19, "images": 5}


def symlinked_split(tmp: Path) -> Path:
    """rubyrizz_yolo with its train folder elsewhere, reached through a symlink beside data.yaml."""
    dataset, elsewhere = tmp / "rubyrizz", tmp / "elsewhere"
    shutil.copytree(RUBYRIZZ, dataset)
    elsewhere.mkdir()
    shutil.move(dataset / "train", elsewhere / "train")
    (dataset / "train").symlink_to(elsewhere / "train", target_is_directory=True)
    assert not list(elsewhere.glob("*.yaml"))
    return dataset / "train"


def test_names_file_beside_a_symlinked_split_folder(tmp_path: Path) -> None:
    train = symlinked_split(tmp_path)
    names = ["Blue", "Green", "Orange", "Red", "White", "Yellow"]  # rubyrizz's data.yaml
    rows = [row for txt in (train / "labels").glob("*.txt") for row in yolo_rows(txt)]
    db = tmp_path / "cli.db"
    invoke("scan", "--db", str(db), "-q", f"train={train}")
    with Index(tmp_path / "api.db") as index:
        index.scan({"train": train}, workers=1)
    for path in (db, tmp_path / "api.db"):
        assert sql_rows(path, "SELECT class_id, name FROM classes ORDER BY class_id") == [
            {"class_id": i, "name": n} for i, n in enumerate(names)
        ]
        assert not sql_rows(path, "SELECT * FROM label_problems WHERE kind = 'unnamed_class'")
    _, doc, _ = report(db, tmp_path / "logs")
    assert list(feature(doc, "DatasetClasses")["stats"]["train"]) == names
    expected = Counter(names[int(row[0])] for row in rows)
    assert feature(doc, "DetectionClassFrequency")["stats"]["train"] == dict(expected)
    splits = feature(doc, "SummaryStats")["stats"]
    assert splits["train"]["Images"] == 2 and splits["train"]["Annotations"] == len(rows)


def test_label_problems_listed_worst_files_first(tmp_path: Path) -> None:
    dataset = tmp_path / "coco128"
    shutil.copytree(COCO128, dataset)
    label_files = [t for t in sorted((dataset / "labels" / "train2017").glob("*.txt")) if t.name not in ORPHANS]
    for n, label_file in enumerate(label_files[:12], start=1):  # file k gets k malformed rows
        label_file.write_text(label_file.read_text() + MALFORMED_ROW * n)
    db = tmp_path / "problems.db"
    scan(db, {"train": [dataset / "images" / "train2017"]}, workers=1)
    _, doc, text = report(db, tmp_path / "logs")
    problems = feature(doc, "LabelProblems")
    stats = problems["stats"]["train"]
    assert list(stats) == ["malformed_row", "label_without_image", "unnamed_class"]  # most problems first
    malformed = stats["malformed_row"]
    assert len(malformed) == sum(range(1, 13))  # every problem in summary.json
    worst = str(label_files[11])
    assert [p["path"] for p in malformed[:12]] == [worst] * 12
    assert malformed[0]["line"] == len(yolo_rows(label_files[11])) + 1
    assert {p["path"] for p in stats["label_without_image"]} == {
        str(dataset / "labels" / "train2017" / o) for o in ORPHANS
    }
    assert feature(doc, "SummaryStats")["stats"]["train"]["Label problems"] == 78 + 2 + 1
    flat = " ".join(text.split())
    assert "Label Problems" in flat
    assert "malformed_row: 78 in 12 file(s)" in flat
    assert f"train: labels/train2017/{label_files[11].name} 12" in flat  # relative to the dataset folder
    assert "and 2 more file(s) with 3 problem(s)" in flat  # files with 2 and 1 problems, past the first 10
    assert f"labels/train2017/{label_files[0].name}" not in flat
    assert "label_without_image: 2 in 2 file(s)" in flat
