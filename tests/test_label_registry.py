"""A label format defined outside imgindex: registered, it is a `scan --labels` choice and is read
end to end like the built-in ones (incremental re-reads included)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import invoke, sql_rows
from PIL import Image

from imgindex.cli import cli
from imgindex.labels.formats import (
    CHOICES,
    ImageIndex,
    LabelFormat,
    LabelPlan,
    Parsed,
    Reading,
    Watched,
    register,
    unregister,
)
from imgindex.labels.formats.base import CLASSES_OF_LABELS
from imgindex.labels.formats.model import add_box


class SidecarJson(LabelFormat):
    """One JSON file beside each image: {"boxes": [{"class": "cat", "xyxy": [x1, y1, x2, y2]}]}, pixels."""

    name = "sidecar"
    missing = "no .json file beside the images"
    class_table = CLASSES_OF_LABELS  # classes named by the labels, ids given by the index

    def find(self, split: str, root: Path) -> LabelPlan | None:
        if not any(root.glob("*.json")):
            return None
        return LabelPlan(split, root, self.name, label_dir=root, reason="JSON files beside the images")

    def files(self, plan: LabelPlan) -> list[Path]:
        return sorted(plan.root.glob("*.json"))

    def watched(self, plan: LabelPlan) -> Watched:
        return Watched(folders=((plan.root, False),))

    def read(self, plan: LabelPlan, path: Path, reading: Reading) -> Parsed:
        try:
            boxes = json.loads(path.read_text())["boxes"]
        except (OSError, ValueError, KeyError) as exc:
            return Parsed(error=f"unreadable: {exc}")
        image = reading.images.by_base(str(path.with_suffix("")))
        size = reading.images.sizes.get(image) if image else None
        parsed = Parsed(images=[image] if image else [])
        for line, box in enumerate(boxes, start=1):
            x1, y1, x2, y2 = (float(v) for v in box["xyxy"])
            add_box(parsed, (str(path), line), image, (None, box["class"]), (x1, y1, x2, y2), ("xyxy", False), size)
        return parsed

    def links_changed(
        self, plan: LabelPlan, path: str, linked: set[str], images: ImageIndex, touched: set[str]
    ) -> bool:
        return not linked and images.by_base(path.removesuffix(".json")) is not None


@pytest.fixture
def sidecar() -> Iterator[LabelFormat]:
    fmt = register(SidecarJson())
    yield fmt
    unregister(fmt.name)


def label_line(output: str) -> dict[str, int]:
    """'...; labels: 2 files read, 0 unchanged, 0 removed; 3 labels, 1 problems' -> counts."""
    text = output.strip().splitlines()[-1].split("labels: ", 1)[1].replace(";", ",")
    return {" ".join(p.split()[1:]): int(p.split()[0]) for p in text.split(", ")}


def write_boxes(path: Path, *boxes: tuple[str, list[int]]) -> None:
    path.write_text(json.dumps({"boxes": [{"class": c, "xyxy": xyxy} for c, xyxy in boxes]}))


def sidecar_split(root: Path) -> Path:
    """Three images; a and b have a JSON file, c has none."""
    root.mkdir(parents=True)
    for stem, size in (("a", (200, 100)), ("b", (100, 100)), ("c", (50, 50))):
        Image.new("RGB", size, (40, 90, 30)).save(root / f"{stem}.png")
    write_boxes(root / "a.json", ("cat", [20, 10, 120, 60]))
    write_boxes(root / "b.json", ("dog", [0, 0, 50, 50]), ("cat", [50, 50, 100, 100]))
    return root


def boxes(db: Path) -> list[tuple[str, str, float, float]]:
    rows = sql_rows(db, "select image_path, class_name, cx, w from labels order by image_path, id")
    return [(Path(r["image_path"]).name, r["class_name"], r["cx"], r["w"]) for r in rows]


def test_a_registered_format_is_a_choice_of_scan(sidecar: LabelFormat) -> None:
    assert "sidecar" in CHOICES
    result = CliRunner().invoke(cli, ["scan", "--help"])
    assert result.exit_code == 0 and "|none|sidecar]" in result.output


def test_a_registered_format_is_scanned_end_to_end(sidecar: LabelFormat, db: Path, tmp_path: Path) -> None:
    root = sidecar_split(tmp_path / "train")
    args = ("scan", "--db", str(db), "--labels", "sidecar", f"train={root}", "-q")
    first = label_line(invoke(*args).output)
    assert (first["files read"], first["labels"], first["problems"]) == (2, 3, 1)
    assert boxes(db) == [("a.png", "cat", 0.35, 0.5), ("b.png", "dog", 0.25, 0.5), ("b.png", "cat", 0.75, 0.5)]
    classes = sql_rows(db, "select class_id, name from classes where split = 'train' order by class_id")
    assert classes == [{"class_id": 0, "name": "cat"}, {"class_id": 1, "name": "dog"}]
    problems = sql_rows(db, "select path, kind from label_problems")
    assert [(Path(p["path"]).name, p["kind"]) for p in problems] == [("c.png", "image_without_label")]
    assert sql_rows(db, "select distinct format from label_files") == [{"format": "sidecar"}]

    again = label_line(invoke(*args).output)
    assert (again["files read"], again["unchanged"]) == (0, 2)

    write_boxes(root / "b.json", ("dog", [0, 0, 100, 50]))
    os.utime(root / "b.json", ns=(1, 1))
    changed = label_line(invoke(*args).output)
    assert (changed["files read"], changed["unchanged"], changed["labels"]) == (1, 1, 2)
    assert boxes(db) == [("a.png", "cat", 0.35, 0.5), ("b.png", "dog", 0.5, 1.0)]

    # the format is remembered for the split: a plain scan keeps reading it, and reads nothing new
    plain = label_line(invoke("scan", "--db", str(db), f"train={root}", "-q").output)
    assert (plain["files read"], plain["unchanged"]) == (0, 2)


def test_a_json_file_for_an_image_that_appears_later_is_re_read(sidecar: LabelFormat, db: Path, tmp_path: Path) -> None:
    root = sidecar_split(tmp_path / "train")
    write_boxes(root / "d.json", ("bird", [0, 0, 10, 10]))
    args = ("scan", "--db", str(db), "--labels", "sidecar", f"train={root}", "-q")
    invoke(*args)
    assert sql_rows(db, "select image_path from labels where class_name = 'bird'") == [{"image_path": None}]
    Image.new("RGB", (20, 20)).save(root / "d.png")
    assert label_line(invoke(*args).output)["files read"] == 1
    (row,) = sql_rows(db, "select image_path, w from labels where class_name = 'bird'")
    assert Path(row["image_path"]).name == "d.png" and row["w"] == 0.5


def test_a_missing_layout_and_an_unregistered_format_are_refused(
    sidecar: LabelFormat, db: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    Image.new("RGB", (8, 8)).save(empty / "x.png")
    refused = invoke("scan", "--db", str(db), "--labels", "sidecar", f"train={empty}", ok=False)
    assert refused.exit_code != 0 and "--labels sidecar: no .json file beside the images" in refused.output
    unregister(sidecar.name)
    assert "sidecar" not in CHOICES
    unknown = invoke("scan", "--db", str(db), "--labels", "sidecar", f"train={empty}", ok=False)
    assert unknown.exit_code != 0 and "sidecar" in unknown.output
    register(sidecar)  # the fixture unregisters it
