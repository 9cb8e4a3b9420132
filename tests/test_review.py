"""The review page's pure parts: boxes on the upright picture, grades of near pairs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from imgindex.serve import review
from imgindex.serve.thumbnails import make_thumbnail

STORED = (60, 40)  # width, height as stored
BOX = (10.0, 5.0, 30.0, 15.0)  # x1, y1, x2, y2 in stored pixels


def upright_marker_box(orientation: int, tmp_path: Path) -> tuple[int, int, int, int]:
    """Where a white box of a stored image lands in imgindex's thumbnail of it, which applies the
    EXIF orientation the same way browsers do."""
    picture = Image.new("L", STORED, 0)
    ImageDraw.Draw(picture).rectangle((BOX[0], BOX[1], BOX[2] - 1, BOX[3] - 1), fill=255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    picture.save(path, exif=exif)
    with Image.open(io.BytesIO(make_thumbnail(path, 512))) as thumb:
        grey = thumb.convert("L").point(lambda v: 255 if v > 127 else 0)
        assert grey.size == review.upright_size(*STORED, orientation)
        found = grey.getbbox()
    assert found is not None
    return found


@pytest.mark.parametrize("orientation", [None, 1, 2, 3, 4, 5, 6, 7, 8])
def test_boxes_turn_as_the_picture_is_turned(orientation: int | None, tmp_path: Path) -> None:
    expected = upright_marker_box(orientation or 1, tmp_path)
    assert review.upright_box(BOX, *STORED, orientation) == pytest.approx(expected, abs=1)


def test_stored_box_from_pixels_or_normalised_centre() -> None:
    assert review.stored_box({"x1": 1, "y1": 2, "x2": 3, "y2": 4}, None, None) == (1, 2, 3, 4)
    centre = {"cx": 0.5, "cy": 0.25, "w": 0.2, "h": 0.1}
    assert review.stored_box(centre, 100, 200) == pytest.approx((40, 40, 60, 60))
    assert review.stored_box(centre, None, None) is None  # size unknown
    assert review.stored_box({"class_id": 3}, 100, 200) is None  # a class label: no box


def test_overlay_uses_the_upright_size() -> None:
    image = {"width": 60, "height": 40, "orientation": 6}
    svg = review.overlay_svg([{"class_id": 0, "class_name": "a<b", "x1": 10, "y1": 5, "x2": 30, "y2": 15}], image)
    assert 'viewBox="0 0 40 60"' in svg
    assert 'x="25.0" y="10.0" width="10.0" height="20.0"' in svg
    assert "a&lt;b" in svg and "a<b" not in svg


def test_grades_order_duplicates_first_and_different_last() -> None:
    kinds = ["rejected", "similar-scene", "perceptual", "something-new", "byte-identical", "copy", "pixel-identical"]
    sections = review.group_by_grade({"kind": k} for k in kinds)
    assert [(g.heading, [r["kind"] for r in rows]) for g, rows in sections] == [
        ("Byte-identical copies", ["byte-identical"]),
        ("Pixel-identical copies", ["pixel-identical"]),
        ("Copies", ["perceptual", "copy"]),
        ("Same scene, another photo", ["similar-scene"]),
        ("something-new", ["something-new"]),
        ("Judged different", ["rejected"]),
    ]
    assert not review.grade("similar-scene").duplicate and review.grade("similar-scene").heading.find("op") < 0
    assert review.grade("different").folded and not review.grade("something-new").duplicate


def test_verdict_counts_duplicates_only() -> None:
    rows = [{"kind": "byte-identical"}, {"kind": "perceptual"}, {"kind": "similar-scene"}, {"kind": "rejected"}]
    assert review.verdict_text(rows) == (
        "2 duplicates among 4 near neighbours (1 byte-identical, 1 perceptual, 1 similar-scene, 1 rejected)."
    )


def test_quality_block_orders_flags_as_the_registry_and_escapes_what_it_shows() -> None:
    links = review.Links("/-/imgindex/image/", "?db=x", "/x/images", "/x/label_problems", {"dark": "/x/q_dark"})
    flags = [
        {"flag": "outlier", "value": 7.25, "rule": "outlier: score over <6>"},
        {"flag": "dark", "value": 0.1, "rule": "dark: under 0.3 & dim"},
        {"flag": "someday", "value": None, "rule": None},  # a flag this version does not know
    ]
    image = {"split": "tr&in", "brightness": 12.345678, "entropy": 0.0, "chroma": None}
    html = str(review.quality_html(image, flags, {"score": 7.25, "measure": "size"}, links))
    assert html.index(">dark<") < html.index("outlier") < html.index("someday")
    assert '<a href="/x/q_dark?split=tr%26in">dark</a>' in html
    assert "rule: under 0.3 &amp; dim" in html and "rule: score over &lt;6&gt;" in html
    assert "brightness <b>12.35</b>" in html and "entropy <b>0</b>" in html and "chroma" not in html
    assert "outlier_score <b>7.25 (size)</b>" in html
    assert review.quality_text(flags) == "Quality flags: dark, outlier, someday."
    assert "No quality flags." in str(review.quality_html(image, [], None, links))
