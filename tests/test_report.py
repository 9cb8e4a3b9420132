"""`imgindex report`: Report.pdf and summary.json in DataGradients' layout, from the index alone."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest
from conftest import DATA, invoke, run_imgindex
from pypdf import PdfReader
from report_fixtures import COCO8, classification_index, detection_index, make_image, yolo_rows

from imgindex.report import ReportError, build_report
from imgindex.scan import scan

DETECTION = [
    "DetectionClassFrequency",
    "DetectionBoundingBoxPerImageCount",
    "DetectionBoundingBoxArea",
    "DetectionBoundingBoxSize",
    "DetectionClassesPerImageCount",
    "DetectionBoundingBoxIoU",
    "DetectionClassHeatmap",
]
IMAGE = ["SummaryStats", "ImagesResolution", "ImageColorDistribution", "ImagesAverageBrightness", "ImageDuplicates"]


def load_summary(path: Path) -> dict[str, Any]:
    """Parse strictly (NaN/Infinity rejected) and validate against the shipped schema."""

    def reject(name: str) -> None:
        raise ValueError(f"{name} in summary.json")

    doc = json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)
    schema = json.loads((resources.files("imgindex.schema") / "summary.schema.json").read_text())
    jsonschema.validate(doc, schema, format_checker=jsonschema.FormatChecker())
    return doc


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


MARKUP = re.compile(r"<[A-Za-z/][^<>]*>|&[#A-Za-z0-9]+;|\*\*|`|^#|\]\(", re.MULTILINE)


def assert_plain_descriptions(doc: dict[str, Any]) -> None:
    """No HTML or PDF markup tags, entities, or markdown in summary.json's descriptions."""
    for f in doc["features"]:
        assert not MARKUP.search(f["description"]), (f["name"], f["description"])


def feature(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in doc["features"] if f["name"] == name)


def report(db: Path, out: Path, *extra: str) -> tuple[str, dict[str, Any], str]:
    result = invoke("report", "--db", str(db), "--out", str(out), *extra)
    lines = result.output.strip().splitlines()
    latest, archive = Path(lines[-2].strip("- ").strip()), Path(lines[-1].strip("- ").strip())
    assert archive.parent == latest
    assert (latest / "Report.pdf").read_bytes() == (archive / "Report.pdf").read_bytes()
    return result.output, load_summary(latest / "summary.json"), pdf_text(latest / "Report.pdf")


@pytest.fixture(scope="module")
def detection(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, Any], str]:
    tmp = tmp_path_factory.mktemp("detection")
    db = detection_index(tmp)
    output, doc, text = report(db, tmp / "logs")
    return tmp, output, doc, text


def test_layout_and_closing_message(detection: tuple[Path, str, dict[str, Any], str]) -> None:
    tmp, output, doc, _ = detection
    assert "We have finished evaluating your dataset!" in output
    latest = tmp / "logs" / "coco8"  # default title: the database's file name
    assert f"- {latest}" in output
    archives = list(latest.glob("archive_*"))
    assert len(archives) == 1 and re.fullmatch(r"archive_\d{8}-\d{6}", archives[0].name)
    assert sorted(p.name for p in archives[0].iterdir()) == ["Report.pdf", "summary.json"]
    assert doc["metadata"]["report_title"] == "coco8"
    assert doc["data_config"]["splits"] == {s: [str(tmp / "coco8" / "images" / s)] for s in ("train", "val")}
    assert doc["data_config"]["label_format"] == {"train": "yolo", "val": "yolo"}
    assert doc["errors"] == []


def test_every_image_and_detection_feature_with_data(detection: tuple[Path, str, dict[str, Any], str]) -> None:
    _, _, doc, text = detection
    flagged = any(s["flagged"] for s in feature(doc, "ImageQualityFlags")["stats"]["splits"].values())
    quality = ["ImageQualityFlags", "ImageQualityThresholds"] + (["ImageQualityExamples"] if flagged else [])
    assert [f["name"] for f in doc["features"]] == IMAGE + quality + ["DatasetClasses", "LabelProblems"] + DETECTION
    assert_plain_descriptions(doc)
    for f in doc["features"]:
        assert f["title"] in text, f["title"]
    for title in ("General Statistics", "Intersection of Bounding Boxes", "Bounding Boxes Density"):
        assert title in text
    assert "Classification Features" not in text


def test_box_counts_match_the_label_files(detection: tuple[Path, str, dict[str, Any], str]) -> None:
    tmp, _, doc, _ = detection
    for split in ("train", "val"):
        rows = [r for txt in (COCO8 / "labels" / split).glob("*.txt") for r in yolo_rows(txt)]
        freq = feature(doc, "DetectionClassFrequency")["stats"][split]
        assert sum(freq.values()) == len(rows)
        persons = sum(1 for r in rows if r[0] == 0)
        assert freq.get("person", 0) == persons
        summary = feature(doc, "SummaryStats")["stats"][split]
        assert summary["Annotations"] == len(rows)
        per_image = feature(doc, "DetectionBoundingBoxPerImageCount")["stats"][split]
        assert per_image["max"] == max(len(yolo_rows(t)) for t in (COCO8 / "labels" / split).glob("*.txt"))
    conn = sqlite3.connect(tmp / "coco8.db")
    problems = dict(conn.execute("SELECT split, count(*) FROM label_problems GROUP BY split").fetchall())
    assert conn.execute("SELECT count(*) FROM label_problems WHERE split = 'val' AND line IS NOT NULL").fetchone()[0]
    for split in ("train", "val"):
        assert feature(doc, "SummaryStats")["stats"][split]["Label problems"] == problems[split]
    assert problems["val"] > problems["train"]  # the malformed row
    listed = feature(doc, "LabelProblems")["stats"]
    assert {s: sum(map(len, kinds.values())) for s, kinds in listed.items()} == problems
    assert [p["detail"] for p in listed["val"]["malformed_row"]] == [
        "3 values; a box row has 5 (class id and 4 coordinates)"
    ]


def test_true_median_resolution(detection: tuple[Path, str, dict[str, Any], str]) -> None:
    from PIL import Image

    _, _, doc, _ = detection
    for split in ("train", "val"):
        sizes = sorted(Image.open(p).size for p in (COCO8 / "images" / split).glob("*.jpg"))
        widths = sorted(w for w, _ in sizes)
        expected = (widths[1] + widths[2]) / 2  # four images: the mean of the middle two
        assert feature(doc, "ImagesResolution")["stats"][split]["width"]["median"] == expected
        assert feature(doc, "SummaryStats")["stats"][split]["Median image width"] == expected


def test_brightness_is_the_stored_mean_luma(detection: tuple[Path, str, dict[str, Any], str]) -> None:
    tmp, _, doc, _ = detection
    conn = sqlite3.connect(tmp / "coco8.db")
    values = [v for (v,) in conn.execute("SELECT brightness FROM images WHERE split = 'val' ORDER BY brightness")]
    stats = feature(doc, "ImagesAverageBrightness")["stats"]["val"]
    assert stats["median"] == pytest.approx((values[1] + values[2]) / 2, abs=0.01)
    assert sum(stats["histogram"]["counts"]) == len(values)


def duplicate_dataset(tmp: Path) -> dict[str, Path]:
    """train: 4 coco8 images + a copy of one; valid: 2 re-encoded copies of train images + 1 new; test: 1 copy."""
    from PIL import Image

    train, valid, test = tmp / "train", tmp / "valid", tmp / "test"
    for folder in (train, valid, test):
        folder.mkdir(parents=True)
    sources = sorted((COCO8 / "images" / "train").glob("*.jpg"))
    for src in sources:
        shutil.copy(src, train / src.name)
    (train / "sub").mkdir()
    shutil.copy(sources[0], train / "sub" / "copy.jpg")
    for src in sources[1:3]:
        Image.open(src).save(valid / f"reencoded_{src.stem}.jpg", quality=90)
    shutil.copy(next((COCO8 / "images" / "val").glob("*.jpg")), valid / "own.jpg")
    shutil.copy(sources[3], test / "leak.jpg")
    return {"train": train, "valid": valid, "test": test}


def test_duplicates_keep_datagradients_contract(tmp_path: Path) -> None:
    folders = duplicate_dataset(tmp_path)
    db = tmp_path / "dups.db"
    scan(db, {k: [v] for k, v in folders.items()}, workers=1)
    _, doc, text = report(db, tmp_path / "logs")
    dup = feature(doc, "ImageDuplicates")
    stats = dup["stats"]
    assert stats["Train duplicates"] == [
        sorted(
            [
                str(folders["train"] / "sub" / "copy.jpg"),
                str(folders["train"] / sorted(p.name for p in folders["train"].glob("*.jpg"))[0]),
            ]
        )
    ]
    assert stats["Validation duplicates"] == []
    assert len(stats["Intersection duplicates"]) == 2
    assert len(stats["Intersection duplicates (train, test)"]) == 1
    assert stats["Test duplicates"] == []
    assert "There are 1 duplicated images appearing 2 times across the dataset." in dup["description"]
    assert_plain_descriptions(doc)
    assert "Train duplicated images: There are 1 duplicated images" in dup["description"]
    sentence = (
        "There are 2 duplicates between train and validation appearing 2 times in the train image "
        "directory, and 2 times in the validation image directory."
    )
    assert sentence in dup["description"]
    assert (
        "There are 1 duplicates between train and test appearing 1 times in the train image directory"
        in dup["description"]
    )
    assert any("2 of 3 validation images (66.7%) also appear in train" in n for n in dup["notices"])
    flat = " ".join(text.split())
    assert "There are 1 duplicated images appearing 2 times across the dataset." in flat
    assert "2 of 3 validation images (66.7%) also appear in train" in flat


def test_split_is_the_scanned_folder_not_a_path_prefix(tmp_path: Path) -> None:
    """'train' and 'train2' share a string prefix; a copy across them is leakage, not a train duplicate."""
    train, other = tmp_path / "train", tmp_path / "train2"
    src = sorted((COCO8 / "images" / "train").glob("*.jpg"))
    for folder in (train, other):
        folder.mkdir()
    shutil.copy(src[0], train / "a.jpg")
    shutil.copy(src[1], train / "b.jpg")
    shutil.copy(src[0], other / "a.jpg")
    db = tmp_path / "prefix.db"
    scan(db, {"train": [train], "val": [other]}, workers=1)
    _, doc, _ = report(db, tmp_path / "logs")
    stats = feature(doc, "ImageDuplicates")["stats"]
    assert stats["Train duplicates"] == [] and stats["Validation duplicates"] == []
    assert stats["Intersection duplicates"] == [[str(train / "a.jpg"), str(other / "a.jpg")]]


def test_train_only_with_an_empty_split_gives_empty_stats_not_nan(tmp_path: Path) -> None:
    train, empty = tmp_path / "train", tmp_path / "val"
    empty.mkdir()
    for n, size in enumerate([(10, 40), (20, 40), (1000, 40)]):
        make_image(train / "nested" / f"{n}.png", size, (30 * n, 100, 200))
    db = tmp_path / "small.db"
    scan(db, {"train": [train], "val": [empty]}, workers=1)
    _, doc, text = report(db, tmp_path / "logs")
    summary = feature(doc, "SummaryStats")["stats"]
    assert summary["train"]["Images"] == 3 and summary["train"]["Median image width"] == 20
    assert summary["val"]["Images"] == 0 and summary["val"]["Median image width"] is None
    assert feature(doc, "ImagesResolution")["stats"]["val"]["width"] == {
        "count": 0,
        "mean": None,
        "std": None,
        "min": None,
        "median": None,
        "max": None,
    }
    assert "Split val holds no images." in feature(doc, "SummaryStats")["notices"]
    assert not any(f["name"].startswith("Detection") for f in doc["features"])
    assert "NaN" not in text


def test_report_never_opens_an_image(tmp_path: Path) -> None:
    folders = duplicate_dataset(tmp_path / "data")
    db = tmp_path / "gone.db"
    scan(db, {k: [v] for k, v in folders.items()}, workers=1)
    shutil.rmtree(tmp_path / "data")  # the index is all the report has
    _, doc, _ = report(db, tmp_path / "logs")
    assert doc["errors"] == []
    assert feature(doc, "SummaryStats")["stats"]["train"]["Images"] == 5


def test_failing_feature_is_reported_and_the_rest_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imgindex.report import features

    def broken(ctx: Any, params: Any) -> None:
        raise RuntimeError("histogram column unreadable")

    spec = features.FEATURES["ImageColorDistribution"]
    monkeypatch.setitem(features.FEATURES, spec.name, features.FeatureSpec(spec.name, spec.section, spec.title, broken))
    db = tmp_path / "one.db"
    scan(db, {"train": [COCO8 / "images" / "train"]}, workers=1)
    outcome = build_report(db, out_dir=tmp_path / "logs")
    doc = load_summary(outcome.summary)
    assert doc["errors"] == [
        {"title": "Color Distribution", "error": "ImageColorDistribution: RuntimeError: histogram column unreadable"}
    ]
    assert "ImagesAverageBrightness" in [f["name"] for f in doc["features"]]
    assert "histogram column unreadable" in pdf_text(outcome.pdf)


def test_config_selects_features_and_scans_duplicate_dirs(tmp_path: Path) -> None:
    folders = duplicate_dataset(tmp_path / "data")
    db = tmp_path / "cfg.db"
    scan(db, {"train": [folders["train"]]}, workers=1)
    config = tmp_path / "detection.yaml"
    config.write_text(
        "report_sections:\n"
        "  - name: Image Features\n"
        "    features:\n"
        "      - SummaryStats\n"
        "      - ImageDuplicates:\n"
        f"          train_image_dir: {folders['train']}\n"
        f"          valid_image_dir: {folders['valid']}\n"
        "  - name: Object Detection Features\n"
        "    features:\n"
        "      - DetectionSampleVisualization:\n"
        "          n_rows: 3\n"
        "      - DetectionClassFrequency:\n"
        "          topk: 30\n"
    )
    _, doc, text = report(db, tmp_path / "logs", "--config", str(config), "--title", "configured")
    assert [f["name"] for f in doc["features"]] == ["SummaryStats", "ImageDuplicates", "DetectionClassFrequency"]
    assert feature(doc, "DetectionClassFrequency")["stats"] == {}  # asked for, no labels: shown empty
    assert doc["data_config"]["splits"]["valid"] == [str(folders["valid"])]  # scanned first
    assert len(feature(doc, "ImageDuplicates")["stats"]["Intersection duplicates"]) == 2
    assert [e["title"] for e in doc["errors"]] == ["DetectionSampleVisualization"]
    assert "Object Detection Features" in text


def test_bad_config_and_missing_database_are_clear_errors(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("report_sections:\n  - name: Image Features\n    features: [ImageResolutionz]\n")
    db = tmp_path / "x.db"
    scan(db, {"train": [COCO8 / "images" / "train"]}, workers=1)
    result = invoke("report", "--db", str(db), "--config", str(config), ok=False)
    assert result.exit_code == 1 and "unknown feature 'ImageResolutionz'" in result.output
    assert "ImagesResolution" in result.output
    (tmp_path / "a_file").write_text("")
    result = invoke("report", "--db", str(db), "--out", str(tmp_path / "a_file"), ok=False)
    assert result.exit_code == 2 and "is a file" in result.output
    with pytest.raises(ReportError, match="choose another folder with --out"):
        build_report(db, out_dir=tmp_path / "a_file" / "logs")
    result = invoke("report", "--db", str(tmp_path / "missing.db"), ok=False)
    assert result.exit_code == 1 and "imgindex scan" in result.output
    assert not (tmp_path / "missing.db").exists()


def test_classification_features(tmp_path: Path) -> None:
    db = classification_index(tmp_path)
    _, doc, text = report(db, tmp_path / "logs")
    names = [f["name"] for f in doc["features"]]
    assert names[-2:] == ["ClassificationClassFrequency", "ClassificationClassDistributionVsArea"]
    assert not any(n.startswith("Detection") for n in names)
    assert feature(doc, "ClassificationClassFrequency")["stats"] == {
        "train": {"cat": 3, "dog": 3},
        "val": {"cat": 2, "dog": 2},
    }
    sizes = feature(doc, "ClassificationClassDistributionVsArea")["stats"]["train"]
    assert sizes["cat"]["median"] == (410 + 310) / 2 and sizes["dog"]["median"] == (130 + 100) / 2
    assert "Image size distribution per class" in text
    assert_plain_descriptions(doc)
    assert any(
        "more than twice the size" in n for n in feature(doc, "ClassificationClassDistributionVsArea")["notices"]
    )


def test_subprocess_end_to_end(tmp_path: Path) -> None:
    db = tmp_path / "sub.db"
    scan(db, {"train": [COCO8 / "images" / "train"], "val": [COCO8 / "images" / "val"]}, workers=1)
    proc = run_imgindex("report", "--db", str(db), "--title", "My data", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("We have finished evaluating your dataset!")
    assert (tmp_path / "logs" / "My data" / "Report.pdf").is_file()
    doc = load_summary(tmp_path / "logs" / "My data" / "summary.json")
    assert doc["metadata"]["report_title"] == "My data"
    climbing = run_imgindex("report", "--db", str(db), "--title", "../up", cwd=tmp_path)
    assert climbing.returncode == 0 and (tmp_path / "logs" / "_up" / "Report.pdf").is_file()
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["My data", "_up"]


def test_colour_distribution_is_the_mean_of_the_stored_histograms(
    detection: tuple[Path, str, dict[str, Any], str],
) -> None:
    tmp, _, doc, _ = detection
    conn = sqlite3.connect(tmp / "coco8.db")
    hists = [json.loads(h) for (h,) in conn.execute("SELECT histogram FROM images WHERE split = 'train'")]
    stats = feature(doc, "ImageColorDistribution")["stats"]["train"]["histogram"]
    for channel in "rgb":
        expected = [sum(h[channel][i] for h in hists) / len(hists) for i in range(len(hists[0][channel]))]
        assert stats[channel] == pytest.approx(expected, abs=1e-4)


def test_stored_answers_and_label_format_in_data_config(tmp_path: Path) -> None:
    shutil.copytree(COCO8, tmp_path / "coco8")
    db = tmp_path / "custom.db"
    images = tmp_path / "coco8" / "images"
    invoke(
        "scan",
        "--db",
        str(db),
        "-q",
        "--labels",
        "custom",
        "--label-first",
        "--bbox-format",
        "cxcywh-norm",
        f"train={images / 'train'}",
        f"val={images / 'val'}",
    )
    _, doc, _ = report(db, tmp_path / "logs")
    assert doc["data_config"]["answers"] == {"labels.label_first": "true", "labels.bbox_format": "cxcywh-norm"}
    assert doc["data_config"]["label_format"] == {"train": "custom", "val": "custom"}
    rows = [r for txt in (COCO8 / "labels" / "train").glob("*.txt") for r in yolo_rows(txt)]
    assert sum(feature(doc, "DetectionClassFrequency")["stats"]["train"].values()) == len(rows)


def voc_names(folder: Path, split: str) -> Counter[str]:
    ids = (folder / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
    names: Counter[str] = Counter()
    for image_id in ids:
        root = ElementTree.parse(folder / "Annotations" / f"{image_id}.xml").getroot()
        names.update(obj.findtext("name") for obj in root.iter("object"))
    return names


def coco_names(annotations: Path) -> Counter[str]:
    doc = json.loads(annotations.read_text())
    category = {c["id"]: c["name"] for c in doc["categories"]}
    return Counter(category[a["category_id"]] for a in doc["annotations"])


def test_voc_sample_with_imagesets_splits(tmp_path: Path) -> None:
    voc = DATA / "bccd_voc"
    db = tmp_path / "bccd.db"
    invoke("scan", "--db", str(db), "-q", *(f"{s}={voc}" for s in ("train", "val", "test")))
    _, doc, text = report(db, tmp_path / "logs")
    assert doc["data_config"]["label_format"] == {"train": "voc", "val": "voc", "test": "voc"}
    for split in ("train", "val", "test"):
        assert feature(doc, "DetectionClassFrequency")["stats"][split] == dict(voc_names(voc, split))
        images = len((voc / "ImageSets" / "Main" / f"{split}.txt").read_text().split())
        assert feature(doc, "SummaryStats")["stats"][split]["Images"] == images
    problems = sum(feature(doc, "SummaryStats")["stats"][s]["Label problems"] for s in ("train", "val", "test"))
    assert problems == 2  # the two zero-area boxes named in the sample's README
    assert "Intersection of Bounding Boxes" in text and "Bounding Boxes Density" in text


def test_coco_sample(tmp_path: Path) -> None:
    chess = DATA / "chess_coco"
    db = tmp_path / "chess.db"
    invoke("scan", "--db", str(db), "-q", *(f"{s}={chess / s}" for s in ("train", "valid", "test")))
    _, doc, _ = report(db, tmp_path / "logs")
    assert doc["data_config"]["label_format"] == {"train": "coco", "valid": "coco", "test": "coco"}
    for split in ("train", "valid", "test"):
        expected = coco_names(chess / split / "_annotations.coco.json")
        assert feature(doc, "DetectionClassFrequency")["stats"][split] == dict(expected)
    stats = feature(doc, "ImageDuplicates")["stats"]
    assert {"Train duplicates", "Validation duplicates", "Test duplicates", "Intersection duplicates"} <= set(stats)


def test_datagradients_default_detection_config(
    detection: tuple[Path, str, dict[str, Any], str], tmp_path: Path
) -> None:
    """DataGradients' own detection.yaml (parameters included) drives the report."""
    tmp, _, _, _ = detection
    config = tmp_path / "detection.yaml"
    config.write_text(
        "report_sections:\n"
        "  - name: Image Features\n"
        "    features:\n"
        "      - SummaryStats\n"
        "      - ImagesResolution\n"
        "      - ImageColorDistribution\n"
        "      - ImagesAverageBrightness\n"
        "  - name: Object Detection Features\n"
        "    features:\n"
        "      - DetectionSampleVisualization:\n"
        "          n_rows: 3\n"
        "          n_cols: 4\n"
        "          stack_splits_vertically: True\n"
        "      - DetectionClassHeatmap:\n"
        "          n_rows: 6\n"
        "          n_cols: 2\n"
        "          heatmap_shape: [200, 200]\n"
        "      - DetectionBoundingBoxArea:\n"
        "          topk: 30\n"
        "          prioritization_mode: train_val_diff\n"
        "      - DetectionBoundingBoxPerImageCount\n"
        "      - DetectionBoundingBoxSize\n"
        "      - DetectionClassFrequency:\n"
        "          topk: 30\n"
        "          prioritization_mode: train_val_diff\n"
        "      - DetectionClassesPerImageCount:\n"
        "          topk: 30\n"
        "          prioritization_mode: train_val_diff\n"
        "      - DetectionBoundingBoxIoU:\n"
        "          num_bins: 10\n"
        "          class_agnostic: true\n"
    )
    _, doc, _ = report(tmp / "coco8.db", tmp_path / "logs", "--config", str(config))
    assert [f["name"] for f in doc["features"]] == [
        "SummaryStats",
        "ImagesResolution",
        "ImageColorDistribution",
        "ImagesAverageBrightness",
        "DetectionClassHeatmap",
        "DetectionBoundingBoxArea",
        "DetectionBoundingBoxPerImageCount",
        "DetectionBoundingBoxSize",
        "DetectionClassFrequency",
        "DetectionClassesPerImageCount",
        "DetectionBoundingBoxIoU",
    ]
    assert doc["errors"] == [
        {"title": "DetectionSampleVisualization", "error": "needs the images' pixels; the report reads only the index"}
    ]
    heatmap_classes = {c for split in feature(doc, "DetectionClassHeatmap")["stats"].values() for c in split}
    assert len(heatmap_classes) == 12  # 6 x 2, all 12 classes of coco8
    assert feature(doc, "DetectionBoundingBoxIoU")["stats"]["train"]["thresholds"][:2] == [0.0, 0.1]
