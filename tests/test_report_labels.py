"""What the report says about labels: which boxes count, the dataset's classes, the label problems."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import DATA
from report_fixtures import yolo_rows
from test_report import feature, report

from imgindex.scan import scan

COCO128 = DATA / "coco128_sample"
ORPHANS = ("000000000656.txt", "000000000659.txt")  # coco128's label files without an image


def rows_with_image(label_dir: Path, image_dir: Path) -> list[list[float]]:
    """The rows of the label files whose image exists."""
    files = [t for t in sorted(label_dir.glob("*.txt")) if (image_dir / f"{t.stem}.jpg").is_file()]
    return [row for t in files for row in yolo_rows(t)]


def coco128_report(tmp: Path, names: list[str] | None = None) -> dict[str, Any]:
    """coco128_sample scanned as train (with a data.yaml of `names` beside it when given)."""
    shutil.copytree(COCO128, tmp / "coco128")
    if names is not None:
        (tmp / "coco128" / "data.yaml").write_text("names:\n" + "".join(f"  - {n}\n" for n in names))
    db = tmp / "coco128.db"
    scan(db, {"train": [tmp / "coco128" / "images" / "train2017"]}, workers=1)
    return report(db, tmp / "logs")[1]


def test_boxes_of_label_files_without_an_image_count_nowhere(tmp_path: Path) -> None:
    label_dir, image_dir = COCO128 / "labels" / "train2017", COCO128 / "images" / "train2017"
    assert all((label_dir / name).is_file() and not (image_dir / name).with_suffix(".jpg").exists() for name in ORPHANS)
    orphans = [row for name in ORPHANS for row in yolo_rows(label_dir / name)]
    kept = rows_with_image(label_dir, image_dir)
    doc = coco128_report(tmp_path)
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
