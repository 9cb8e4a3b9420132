"""The report's Image Quality section: the stored quality flags per split with the rule they
applied, the judged measures with their thresholds drawn, and thumbnails of flagged images."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import DATA, invoke, sql_rows
from matplotlib.lines import Line2D
from PIL import Image, ImageEnhance
from pypdf import PdfReader
from test_report import feature, report

from imgindex import quality, store
from imgindex.quality.flags import FLAGS
from imgindex.report.features import FEATURES, Context

COCO128 = DATA / "coco128_sample" / "images" / "train2017"
COCO8_VAL = DATA / "coco8" / "images" / "val"
QUALITY = ["ImageQualityFlags", "ImageQualityThresholds", "ImageQualityExamples"]
# The edge cases added to train, made from its own photos, and the flag each must carry.
EDGE_CASES = {"dark.jpg": "dark", "grey.jpg": "grayscale", "strip.jpg": "odd_aspect_ratio", "tiny.jpg": "odd_size"}
GONE = "gone_dark.jpg"  # a second dark photo, deleted after the scan


def edge_cases(folder: Path) -> None:
    photos = sorted(folder.glob("*.jpg"))
    with Image.open(photos[0]) as photo:
        ImageEnhance.Brightness(photo.convert("RGB")).enhance(0.08).save(folder / "dark.jpg", quality=92)
    with Image.open(photos[1]) as photo:
        ImageEnhance.Brightness(photo.convert("RGB")).enhance(0.1).save(folder / GONE, quality=92)
    with Image.open(photos[2]) as photo:
        photo.convert("L").convert("RGB").save(folder / "grey.jpg", quality=92)
    with Image.open(photos[3]) as photo:
        w, h = photo.size
        strip = photo.convert("RGB").crop((0, (h - w // 4) // 2, w, (h - w // 4) // 2 + w // 4))
        strip.save(folder / "strip.jpg", quality=92)
    with Image.open(photos[4]) as photo:
        photo.convert("RGB").resize((photo.width // 8, photo.height // 8)).save(folder / "tiny.jpg", quality=92)


def quality_json(db: Path) -> dict[str, Any]:
    return json.loads(invoke("quality", "--db", str(db), "--json").stdout)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """coco128_sample with the edge cases as train (21 images: outlier scores are judged), coco8's
    val as val, scanned through the CLI; then one flagged photo deleted."""
    tmp = tmp_path_factory.mktemp("quality")
    shutil.copytree(COCO128, tmp / "train")
    shutil.copytree(COCO8_VAL, tmp / "val")
    edge_cases(tmp / "train")
    db = tmp / "index.db"
    invoke("scan", "--db", str(db), "--workers", "1", "-q", f"train={tmp / 'train'}", f"val={tmp / 'val'}")
    (tmp / "train" / GONE).unlink()
    return db


@pytest.fixture(scope="module")
def reported(scanned: Path) -> tuple[Path, dict[str, Any], str]:
    _, doc, text = report(scanned, scanned.parent / "logs")
    return scanned, doc, text


def flags_of(db: Path, name: str) -> set[str]:
    (row,) = sql_rows(db, f"SELECT flags FROM quality WHERE rel_path = '{name}'")
    return set(filter(None, row["flags"].split(",")))


def test_edge_cases_are_flagged(scanned: Path) -> None:
    for name, flag in {**EDGE_CASES, GONE: "dark"}.items():
        assert flag in flags_of(scanned, name), name


def test_section_follows_image_features(reported: tuple[Path, dict[str, Any], str]) -> None:
    _, doc, text = reported
    names = [f["name"] for f in doc["features"]]
    assert doc["errors"] == []
    assert names[names.index("ImageDuplicates") + 1 : names.index("ImageDuplicates") + 4] == QUALITY
    assert "Image Quality" in text
    for name in QUALITY:
        assert feature(doc, name)["title"] in text


def test_counts_match_the_quality_command_and_view(reported: tuple[Path, dict[str, Any], str]) -> None:
    db, doc, _ = reported
    stats = feature(doc, "ImageQualityFlags")["stats"]
    command = quality_json(db)
    assert set(stats["splits"]) == set(command["splits"]) == {"train", "val"}
    columns = ", ".join(f"sum({f.name}) AS {f.name}" for f in FLAGS)
    view = {r["split"]: r for r in sql_rows(db, f"SELECT split, count(*) AS n, {columns} FROM quality GROUP BY split")}
    for split, counted in command["splits"].items():
        assert stats["splits"][split]["images"] == counted["images"] == view[split]["n"]
        assert stats["splits"][split]["flags"] == counted["flags"]
        assert counted["flags"] == {f.name: view[split][f.name] for f in FLAGS}
    anyflag = sql_rows(db, "SELECT count(*) AS n FROM quality WHERE split = 'train' AND flags != ''")[0]["n"]
    assert stats["splits"]["train"]["flagged"] == anyflag
    for flag in EDGE_CASES.values():
        assert stats["splits"]["train"]["flags"][flag] >= 1


def test_rule_is_the_stored_one(reported: tuple[Path, dict[str, Any], str]) -> None:
    db, doc, text = reported
    stored = sql_rows(db, "SELECT flag, threshold, rule FROM quality_rule")
    sentences = [r["rule"] for r in stored]
    assert sentences == quality_json(db)["rule"]["flags"]
    database = store.open_readonly(db)
    try:
        applied = quality.applied(database)
    finally:
        database.close()
    words = " ".join(text.split())
    for name in QUALITY:
        rule = feature(doc, name)["stats"]["rule"]
        assert rule == {"thresholds": applied, "flags": sentences}
    for sentence in sentences:
        assert " ".join(sentence.split()) in words, sentence
    drawn = feature(doc, "ImageQualityThresholds")["stats"]["flags"]
    assert {name: entry["threshold"] for name, entry in drawn.items()} == {r["flag"]: r["threshold"] for r in stored}


def test_distributions_count_what_the_flags_judged(reported: tuple[Path, dict[str, Any], str]) -> None:
    _, doc, _ = reported
    counts = feature(doc, "ImageQualityFlags")["stats"]["splits"]
    drawn = feature(doc, "ImageQualityThresholds")["stats"]["flags"]
    assert list(drawn) == [f.name for f in FLAGS]
    for name, entry in drawn.items():
        for split, values in entry["splits"].items():
            assert values["flagged"] == counts[split]["flags"][name], (name, split)
            if values["count"]:
                assert sum(values["histogram"]["counts"]) == values["count"]
    low, high = drawn["odd_size"]["splits"]["train"]["limits"]
    assert low < 1 < high
    assert drawn["odd_size"]["splits"]["val"]["limits"] is None  # too few images to judge sizes


def test_odd_size_limits_are_where_the_flag_judges(reported: tuple[Path, dict[str, Any], str]) -> None:
    """The limits drawn per split leave outside them exactly the images the split's odd_size flags."""
    db, doc, _ = reported
    for split, drawn in feature(doc, "ImageQualityThresholds")["stats"]["flags"]["odd_size"]["splits"].items():
        if drawn["limits"] is None:
            continue
        rows = sql_rows(db, f"SELECT width, height, odd_size FROM quality WHERE split = '{split}'")
        sides = np.sqrt([r["width"] * r["height"] for r in rows])
        relative = sides / np.median(sides)
        low, high = drawn["limits"]
        outside = (relative < low) | (relative > high)
        assert outside.tolist() == [bool(r["odd_size"]) for r in rows]


def test_threshold_lines_are_drawn_where_the_rule_says(scanned: Path) -> None:
    database = store.open_readonly(scanned)
    try:
        ctx = Context(database, scanned)
        result = FEATURES["ImageQualityThresholds"].compute(ctx, {})
        thresholds = quality.applied(database)
    finally:
        database.close()
    assert result is not None and result.figure is not None
    axes = [ax for ax in result.figure.axes if ax.get_visible()]
    assert len(axes) == len(FLAGS)
    for ax, flag in zip(axes, FLAGS):
        assert ax.get_title().replace("\n", " ").startswith(f"{flag.name}: ")
        verticals = [line for line in ax.get_lines() if isinstance(line, Line2D) and len(set(line.get_xdata())) == 1]
        assert verticals, flag.name
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        if flag.name == "odd_size":
            assert {line.get_color() for line in verticals} <= set(ctx.colours.values())
            continue
        assert [float(line.get_xdata()[0]) for line in verticals] == [thresholds[flag.name]]
        assert any(f"{thresholds[flag.name]:g}" in label for label in labels)
        curves = {p.get_edgecolor()[:3] for p in ax.patches}
        # train and val each in its colour; val (4 images) has no outlier scores
        assert len(curves) == (1 if flag.name == "outlier" else 2), flag.name
    result.figure.clf()


def test_thumbnails_of_flagged_images(reported: tuple[Path, dict[str, Any], str]) -> None:
    _, doc, text = reported
    examples = feature(doc, "ImageQualityExamples")
    shown = {e["path"].rsplit("/", 1)[-1]: e for flag in examples["stats"]["flags"].values() for e in flag["shown"]}
    for name in EDGE_CASES:
        assert shown[name]["thumbnail"] == "shown"
        assert name in text
    assert all(len(flag["shown"]) <= 6 for flag in examples["stats"]["flags"].values())
    pages = [p for p in PdfReader(reported[0].parent / "logs" / "index" / "Report.pdf").pages]
    gallery = [p for p in pages if "ImageQualityExamples" in (p.extract_text() or "")]
    assert gallery and len(gallery[0].images) >= 3


def test_a_deleted_file_gets_a_placeholder(reported: tuple[Path, dict[str, Any], str]) -> None:
    _, doc, text = reported
    examples = feature(doc, "ImageQualityExamples")
    dark = {e["path"].rsplit("/", 1)[-1]: e for e in examples["stats"]["flags"]["dark"]["shown"]}
    assert dark[GONE]["thumbnail"] == "file is no longer on disk"
    assert dark["dark.jpg"]["thumbnail"] == "shown"
    assert any("no longer on disk" in n for n in examples["notices"])
    assert "(file is no longer on disk)" in text


def test_a_changed_threshold_is_what_the_report_applies(
    reported: tuple[Path, dict[str, Any], str], tmp_path: Path
) -> None:
    scanned, before, _ = reported
    db = tmp_path / "index.db"
    shutil.copy(scanned, db)
    judged = feature(before, "ImageQualityThresholds")["stats"]["flags"]["dark"]["splits"]["train"]
    above_all = round(judged["max"] + 0.001, 4)  # every train image is dark under this threshold
    invoke("quality", "--db", str(db), "--threshold", f"dark={above_all}")
    _, doc, text = report(db, tmp_path / "logs")
    stats = feature(doc, "ImageQualityFlags")["stats"]
    assert stats["rule"]["thresholds"]["dark"] == above_all
    assert stats["splits"]["train"]["flags"]["dark"] == stats["splits"]["train"]["images"] == judged["count"]
    sentence = next(s for s in stats["rule"]["flags"] if s.startswith("dark: "))
    assert f"{above_all:g}" in sentence and sentence in " ".join(text.split())
    assert sentence in quality_json(db)["rule"]["flags"]
    assert feature(doc, "ImageQualityThresholds")["stats"]["flags"]["dark"]["threshold"] == above_all


def test_a_config_chooses_the_quality_features(scanned: Path, tmp_path: Path) -> None:
    config = tmp_path / "quality.yaml"
    config.write_text(
        "report_sections:\n  - name: Image Quality\n    features:\n      - ImageQualityFlags\n"
        "      - ImageQualityExamples:\n          examples: 1\n"
    )
    _, doc, text = report(scanned, tmp_path / "logs", "--config", str(config))
    assert [f["name"] for f in doc["features"]] == ["ImageQualityFlags", "ImageQualityExamples"]
    flags = feature(doc, "ImageQualityExamples")["stats"]["flags"]
    assert flags and all(len(f["shown"]) == 1 for f in flags.values())
    assert "Quality Measures and Thresholds" not in text


def test_a_file_changed_since_the_scan_is_not_shown(scanned: Path, tmp_path: Path) -> None:
    grey = scanned.parent / "train" / "grey.jpg"
    stamp = grey.stat()
    os.utime(grey, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))  # touched after the scan
    try:
        _, doc, text = report(scanned, tmp_path / "logs")
    finally:
        os.utime(grey, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    shown = feature(doc, "ImageQualityExamples")["stats"]["flags"]["grayscale"]["shown"]
    (entry,) = [e for e in shown if e["path"] == str(grey)]
    assert entry["thumbnail"] == "file changed since it was indexed"
    assert "(file changed since it was indexed)" in " ".join(text.split())
