"""Label format detection and parsing, without a database."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import DATA

from imgindex.labels.formats import ImageIndex, LabelError, detect, label_files, read_label_file
from imgindex.labels.formats.coco import parse_coco_text
from imgindex.labels.formats.model import make_box
from imgindex.labels.formats.names import find_names_file, load_names
from imgindex.labels.formats.rows import Convention, looks_like_yolo, parse_rows
from imgindex.labels.formats.voc import parse_voc_text

# One box, x 20..120 and y 10..60 pixels in a 200 x 100 image, written in every convention.
SIZE = (200, 100)
WRITTEN = {
    ("xyxy", False): (20, 10, 120, 60),
    ("xywh", False): (20, 10, 100, 50),
    ("cxcywh", False): (70, 35, 100, 50),
    ("xyxy", True): (0.1, 0.1, 0.6, 0.6),
    ("xywh", True): (0.1, 0.1, 0.5, 0.5),
    ("cxcywh", True): (0.35, 0.35, 0.5, 0.5),
}


@pytest.mark.parametrize("convention", sorted(WRITTEN))
def test_every_convention_gives_the_same_box(convention: tuple[str, bool]) -> None:
    box = make_box(WRITTEN[convention], convention[0], convention[1], SIZE)  # type: ignore[arg-type]
    assert (box.x1, box.y1, box.x2, box.y2) == pytest.approx((20, 10, 120, 60))
    assert (box.cx, box.cy, box.w, box.h, box.area) == pytest.approx((0.35, 0.35, 0.5, 0.5, 0.25))


def test_without_image_size_only_the_known_half_is_filled() -> None:
    normalised = make_box((0.35, 0.35, 0.5, 0.5), "cxcywh", True, None)
    assert normalised.w == 0.5 and normalised.x1 is None
    pixels = make_box((20, 10, 120, 60), "xyxy", False, None)
    assert pixels.x2 == 120 and pixels.cx is None and pixels.area is None


def test_box_first_rows_and_csv_header() -> None:
    text = "x1,y1,x2,y2,class\n20,10,120,60,3\n"
    parsed = parse_rows(text, "a.csv", "/a.png", SIZE, None, Convention(False, "xyxy", False), polygons=False)
    assert parsed.problems == [] and len(parsed.labels) == 1
    assert parsed.labels[0].class_id == 3 and parsed.labels[0].box.w == pytest.approx(0.5)  # type: ignore[union-attr]


def test_yolo_look() -> None:
    assert looks_like_yolo([[0, 0.5, 0.5, 0.2, 0.2], [3, 0.1, 0.2, 0.3, 0.4]])
    assert not looks_like_yolo([[20, 10, 120, 60, 3]])  # pixels
    assert not looks_like_yolo([[0.1, 0.1, 0.6, 0.6, 3]])  # box first
    assert looks_like_yolo([[0, 0.1, 0.1, 0.3, 0.1, 0.3, 0.3]])  # a segmentation polygon is still YOLO


def test_detects_each_vendored_layout() -> None:
    assert detect("train", DATA / "coco8/images/train").format == "yolo"
    ruby = detect("valid", DATA / "rubyrizz_yolo/valid")
    assert (ruby.format, ruby.names_file) == ("yolo", (DATA / "rubyrizz_yolo/data.yaml").resolve())
    inner = detect("valid", DATA / "rubyrizz_yolo/valid/images")  # the images folder itself
    assert inner.format == "yolo" and inner.label_dir == (DATA / "rubyrizz_yolo/valid/labels").resolve()
    assert detect("train", DATA / "chess_coco/train").format == "coco"
    voc = detect("val", DATA / "bccd_voc")
    assert voc.format == "voc" and voc.members == frozenset(
        (DATA / "bccd_voc/ImageSets/Main/val.txt").read_text().split()
    )
    assert detect("all", DATA / "raccoon_voc/images").format == "voc"
    assert detect("x", DATA / "imagehash").format == "none"


def test_coco_layout_with_annotations_folder(tmp_path: Path) -> None:
    images = tmp_path / "coco/images/val2017"
    shutil.copytree(DATA / "chess_coco/valid", images)
    (tmp_path / "coco/annotations").mkdir()
    (images / "_annotations.coco.json").rename(tmp_path / "coco/annotations/instances_val2017.json")
    plan = detect("val", images)
    assert plan.format == "coco" and plan.coco_files == ((tmp_path / "coco/annotations/instances_val2017.json"),)


def test_override_that_does_not_fit_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="--labels yolo: no labels/ folder"):
        detect("train", DATA / "chess_coco/train", override="yolo")
    with pytest.raises(LabelError, match="--coco FILE"):
        detect("train", DATA / "coco8/images/train", override="coco")
    assert detect("train", DATA / "coco8/images/train", override="none").format == "none"


def test_names_as_mapping_and_classes_txt(tmp_path: Path) -> None:
    (tmp_path / "a/b/c").mkdir(parents=True)
    (tmp_path / "dataset.yaml").write_text("names:\n  0: person\n  2: car\n")
    assert find_names_file([tmp_path / "a/b/c"]) == tmp_path / "dataset.yaml"
    assert load_names(tmp_path / "dataset.yaml") == {0: "person", 2: "car"}
    (tmp_path / "a/classes.txt").write_text("cat\ndog\n")
    assert load_names(tmp_path / "a/classes.txt") == {0: "cat", 1: "dog"}


def test_coco_problems() -> None:
    data = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 200, "height": 100},
            {"id": 2, "file_name": "gone.jpg", "width": 10, "height": 10},
        ],
        "categories": [{"id": 0, "name": "thing"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 0, "bbox": [20, 10, 100, 50]},
            {"id": 2, "image_id": 9, "category_id": 0, "bbox": [0, 0, 1, 1]},
            {"id": 3, "image_id": 1, "category_id": 5, "bbox": [150, 0, 100, 10]},
            {"id": 4, "image_id": 1, "category_id": 0, "segmentation": [[1, 2, 3, 4]]},
        ],
    }
    parsed = parse_coco_text(json.dumps(data), "x.json", lambda name: "/d/a.jpg" if name == "a.jpg" else None)
    kinds = [(p.kind, p.line) for p in parsed.problems]
    assert kinds == [
        ("missing_image_file", None),
        ("malformed_row", 2),
        ("unnamed_class", 3),
        ("box_outside_image", 3),
        ("malformed_row", 4),
    ]
    assert parsed.images == ["/d/a.jpg"] and len(parsed.labels) == 2
    assert parse_coco_text("{not json", "x.json", lambda n: None).error is not None
    assert "not a COCO file" in str(parse_coco_text("[]", "x.json", lambda n: None).error)


def test_voc_problems() -> None:
    xml = (
        "<annotation><filename>nowhere.jpg</filename><size><width>0</width><height>0</height></size>"
        "<object><name>a</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>5</xmax><ymax>9</ymax></bndbox></object>"
        "<object><name>b</name></object></annotation>"
    )
    parsed = parse_voc_text(xml, "n.xml", lambda name, path: (None, None))
    assert [p.kind for p in parsed.problems] == ["missing_image_file", "zero_area_box", "malformed_row"]
    assert parsed.labels[0].box.x1 == 5 and parsed.labels[0].box.cx is None  # type: ignore[union-attr]
    assert parse_voc_text("<annotation>", "n.xml", lambda n, p: (None, None)).error is not None


def test_reading_a_plan_links_labels_to_images() -> None:
    plan = detect("valid", DATA / "rubyrizz_yolo/valid")
    images = ImageIndex({str(p.resolve()): (480, 480) for p in (DATA / "rubyrizz_yolo/valid/images").iterdir()})
    names = load_names(plan.names_file) if plan.names_file else None
    files = [f for f in label_files(plan) if f.suffix == ".txt"]
    for f in files:
        parsed = read_label_file(plan, f, images, names)
        assert parsed.images and Path(parsed.images[0]).stem == f.stem
        assert all(lb.class_name in names.values() for lb in parsed.labels)  # type: ignore[union-attr]


def test_split_folders_are_not_classes(tmp_path: Path) -> None:
    from PIL import Image

    for name in ("train", "valid", "cat", "dog"):
        (tmp_path / "layout" / ("train" if name in ("cat", "dog") else name)).mkdir(parents=True, exist_ok=True)
    for folder in ("root/cat", "root/dog", "layout/train", "layout/valid", "nested/a/deeper", "nested/b/deeper"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / folder / "x.png")
    assert detect("s", tmp_path / "root").format == "folders"
    assert detect("s", tmp_path / "layout").format == "none"  # a dataset root, not two classes
    assert detect("s", tmp_path / "nested").format == "none"  # class folders hold their images directly
