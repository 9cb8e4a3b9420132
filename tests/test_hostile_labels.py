"""Numbers in label files that cannot be a class id or a box: each such row is a malformed_row
problem, the scan goes on, the valid rows are indexed and the report's features all run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import DATA, invoke, sql_rows

from imgindex.labels.formats.coco import parse_coco_text
from imgindex.labels.formats.model import MALFORMED_ROW
from imgindex.labels.formats.rows import looks_like_yolo, parse_rows
from imgindex.labels.formats.voc import parse_voc_text

BAD_IDS = ["nan", "inf", "-inf", "1e20", "1e300", "-1", "2.5"]
BAD_BOXES = ["nan 0.5 0.2 0.2", "0.5 inf 0.2 0.2", "0.5 0.5 1e300 0.2", "0.5 0.5 0.2 -inf"]


@pytest.mark.parametrize("class_id", BAD_IDS)
def test_a_class_id_that_is_no_id_is_a_malformed_row(class_id: str) -> None:
    parsed = parse_rows(f"{class_id} 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n", "a.txt", "/d/a.jpg", (640, 480), None)
    assert [p.kind for p in parsed.problems] == [MALFORMED_ROW]
    assert [label.class_id for label in parsed.labels] == [0]


@pytest.mark.parametrize("box", BAD_BOXES)
def test_a_box_number_that_is_not_finite_or_too_large_is_a_malformed_row(box: str) -> None:
    parsed = parse_rows(f"3 {box}\n", "a.txt", "/d/a.jpg", (640, 480), None)
    assert parsed.labels == []
    assert [p.kind for p in parsed.problems] == [MALFORMED_ROW]


def test_detection_survives_rows_of_non_finite_numbers() -> None:
    rows = [[float("nan"), 0.5, 0.5, 0.1, 0.1], [float("inf"), 0.5, 0.5, 0.1, 0.1], [0, 0.5, 0.5, 0.1, 0.1]]
    assert looks_like_yolo(rows) is False  # 1 of 3 rows fits: not YOLO, and no exception


def coco(annotations: list[object], width: object = 640) -> str:
    return json.dumps(
        {
            "images": [{"id": 1, "file_name": "a.jpg", "width": width, "height": 480}],
            "annotations": annotations,
            "categories": [{"id": 3, "name": "cat"}, {"id": 2**70, "name": "huge"}],
        }
    )


def test_coco_numbers_that_cannot_be_boxes_or_ids_are_problems() -> None:
    good = {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 50, 50]}
    bad = [
        {"id": 2, "image_id": 1, "category_id": 3, "bbox": [float("nan"), 10, 50, 50]},
        {"id": 3, "image_id": 1, "category_id": 3, "bbox": [10, 10, float("inf"), 50]},
        {"id": 4, "image_id": 1, "category_id": "3", "bbox": [10, 10, 50, 50]},
        {"id": 5, "image_id": 1, "category_id": 2**70, "bbox": [10, 10, 50, 50]},
        {"id": 6, "image_id": 1, "bbox": [10, 10, 50, 50]},
    ]
    parsed = parse_coco_text(coco([good, *bad], width=float("inf")), "x.json", lambda name: "/d/a.jpg")
    assert [label.class_id for label in parsed.labels] == [3]
    assert parsed.classes == {3: "cat"}  # an id past the integer range is no category
    assert [p.kind for p in parsed.problems] == [MALFORMED_ROW] * len(bad)
    assert parsed.labels[0].box is not None and parsed.labels[0].box.x1 == 10  # width unknown: pixels kept


def test_a_coco_box_of_negative_width_is_described_in_its_pixels_too() -> None:
    box = {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, -5, 4]}
    [problem] = parse_coco_text(coco([box]), "x.json", lambda name: "/d/a.jpg").problems
    assert problem.detail == "box 10 10 -5 4 has width -0.0078125 and height 0.00833333 (normalised; -5 x 4 pixels)"


def test_coco_json_nested_too_deep_is_an_unreadable_file_not_a_crash() -> None:
    parsed = parse_coco_text("[" * 100_000 + "]" * 100_000, "deep.json", lambda name: None)
    assert parsed.error is not None and "nested too deep" in parsed.error


def test_voc_infinite_numbers_are_problems() -> None:
    xml = (
        "<annotation><filename>a.jpg</filename><size><width>inf</width><height>480</height></size>"
        "<object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>inf</xmax><ymax>9</ymax></bndbox></object>"
        "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
        "</annotation>"
    )
    parsed = parse_voc_text(xml, "a.xml", lambda name, path: ("/d/a.jpg", (640, 480)))
    assert [label.class_name for label in parsed.labels] == ["cat"]
    assert [p.kind for p in parsed.problems] == [MALFORMED_ROW]


def test_a_scan_of_hostile_yolo_rows_indexes_the_rest_and_the_report_runs(db: Path, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(DATA / "coco8" / "images" / "val", root / "images")
    shutil.copytree(DATA / "coco8" / "labels" / "val", root / "labels")
    first = sorted((root / "labels").glob("*.txt"))[0]
    hostile = [f"{cid} 0.5 0.5 0.2 0.2" for cid in BAD_IDS] + [f"3 {box}" for box in BAD_BOXES]
    first.write_text(first.read_text() + "\n".join(hostile) + "\n")
    invoke("scan", "--db", str(db), f"val={root}", "-q")
    problems = sql_rows(db, "select kind, count(*) n from label_problems where kind = 'malformed_row'")
    assert problems == [{"kind": MALFORMED_ROW, "n": len(hostile)}]
    assert sql_rows(db, "select count(*) n from labels where cx is null or not (cx between 0 and 1)")[0]["n"] == 0
    report = invoke("report", "--db", str(db), "--out", str(tmp_path / "logs"))
    assert "Feature failed" not in report.output


def test_label_files_saved_with_a_byte_order_mark_read_alike(db: Path, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(DATA / "coco8" / "images" / "val", root / "images")
    shutil.copytree(DATA / "coco8" / "labels" / "val", root / "labels")
    invoke("scan", "--db", str(db), f"val={root}", "-q")
    before = sql_rows(db, "select image_path, class_id, cx, cy, w, h from labels order by 1, 2, 3")
    for label in (root / "labels").glob("*.txt"):
        label.write_bytes(b"\xef\xbb\xbf" + label.read_bytes())  # as Windows Notepad saves UTF-8
    invoke("scan", "--db", str(db), f"val={root}", "-q")
    assert sql_rows(db, "select image_path, class_id, cx, cy, w, h from labels order by 1, 2, 3") == before
    assert sql_rows(db, "select count(*) n from label_problems where kind = 'malformed_row'")[0]["n"] == 0


def test_a_fifo_named_like_a_label_file_is_refused_without_blocking(db: Path, tmp_path: Path) -> None:
    import os

    root = tmp_path / "ds"
    shutil.copytree(DATA / "coco8" / "images" / "val", root / "images")
    shutil.copytree(DATA / "coco8" / "labels" / "val", root / "labels")
    os.mkfifo(root / "labels" / "zz_fifo.txt")  # nobody ever writes to it
    invoke("scan", "--db", str(db), f"val={root}", "-q")
    (row,) = sql_rows(db, "select error from label_files where path like '%zz_fifo.txt'")
    assert "not a regular file" in row["error"]
    assert sql_rows(db, "select count(*) n from labels")[0]["n"] > 0


def test_a_link_loop_at_the_top_of_a_split_is_skipped(db: Path, tmp_path: Path) -> None:
    import os

    root = tmp_path / "split"
    shutil.copytree(DATA / "coco8" / "images" / "val", root)
    os.symlink("x2.jpg", root / "x1.jpg")
    os.symlink("x1.jpg", root / "x2.jpg")
    out = invoke("scan", "--db", str(db), f"val={root}", "-q").output
    assert "\n4 new, 0 changed, 0 unchanged, 0 removed, 0 errors, 2 skipped in " in out
    assert out.startswith("Skipped 2 links that lead nowhere (dangling, or a loop of links): ")


def test_a_yaml_alias_bomb_in_data_yaml_names_nothing_quickly(tmp_path: Path) -> None:
    import time

    from imgindex.labels.formats.names import load_names

    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    lines.append("names: [*i, *i, cat]")  # 9**9 strings if expanded
    bomb = tmp_path / "data.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    assert load_names(bomb) == {2: "cat"}
    assert time.monotonic() - started < 5


def test_names_keep_only_scalar_names_and_class_ids(tmp_path: Path) -> None:
    from imgindex.labels.formats.names import MAX_NAME_CHARS, names_from_mapping

    names = {"0": "person", 1: ["nested"], 10**30: "huge", -1: "negative", 2: "x" * 1000, "three": "word"}
    assert names_from_mapping(names) == {0: "person", 2: "x" * MAX_NAME_CHARS}


def test_retry_errors_reads_a_fixed_label_file_again(db: Path, tmp_path: Path) -> None:
    """A label file that could not be read and is fixed without a new size or mtime (as when its
    permissions are fixed) is read again by a scan with --retry-errors, as images are."""
    import os

    split = tmp_path / "train"
    shutil.copytree(DATA / "chess_coco" / "train", split)
    annotations = split / "_annotations.coco.json"
    good = annotations.read_bytes()
    annotations.write_bytes(b"[" + good[1:])  # the same size, not JSON
    stamp = annotations.stat().st_mtime_ns
    invoke("scan", "--db", str(db), "-q", f"train={split}")
    query = "select error from label_files where split = 'train'"
    assert sql_rows(db, query)[0]["error"]
    annotations.write_bytes(good)
    os.utime(annotations, ns=(stamp, stamp))  # fixed, and nothing a stat can see
    invoke("scan", "--db", str(db), "-q", f"train={split}")
    assert sql_rows(db, query)[0]["error"], "an unchanged file is not read again without --retry-errors"
    invoke("scan", "--db", str(db), "-q", "--retry-errors", f"train={split}")
    assert sql_rows(db, query)[0]["error"] is None
    assert sql_rows(db, "select count(*) n from labels")[0]["n"] > 0
