"""What the report's plots show: how many classes, the brightness range, the images' shape."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import DATA
from matplotlib.figure import Figure
from PIL import Image
from report_fixtures import COCO80, detection_index, make_image

from imgindex import store
from imgindex.report.features import FEATURES, Context, FeatureResult
from imgindex.scan import scan

COCO128 = DATA / "coco128_sample"


def compute(db: Path, name: str, params: Mapping[str, Any] | None = None) -> FeatureResult:
    database = store.open_readonly(db)
    try:
        result = FEATURES[name].compute(Context(database, db), params or {})
    finally:
        database.close()
    assert result is not None and result.figure is not None
    return result


def titles(fig: Figure) -> list[str]:
    """The figure's title and those of its axes."""
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""  # get_suptitle() needs matplotlib 3.8
    return [suptitle] + [ax.get_title() for ax in fig.axes]


@pytest.fixture(scope="module")
def coco80(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """coco128_sample with the 80 COCO names in a data.yaml: 23 classes in use."""
    tmp = tmp_path_factory.mktemp("coco80")
    shutil.copytree(COCO128, tmp / "coco128")
    (tmp / "coco128" / "data.yaml").write_text("names:\n" + "".join(f"  - {n}\n" for n in COCO80))
    db = tmp / "coco80.db"
    scan(db, {"train": [tmp / "coco128" / "images" / "train2017"]}, workers=1)
    return db


@pytest.mark.parametrize(
    ("name", "params", "title"),
    [
        ("DetectionClassFrequency", {"topk": 20}, "top 20 of 80 classes (23 in use)"),
        ("DetectionClassFrequency", {}, "the 23 classes in use, of 80"),
        ("DetectionBoundingBoxArea", {"topk": 5}, "top 5 of 80 classes (23 in use)"),
        ("DetectionClassesPerImageCount", {"topk": 5}, "top 5 of 80 classes (23 in use)"),
        ("DetectionBoundingBoxIoU", {"topk": 5}, "top 5 of 80 classes (23 in use)"),
        ("DetectionClassHeatmap", {}, "top 6 of 80 classes (23 in use)"),
    ],
)
def test_a_plot_of_some_classes_says_how_many_of_how_many(
    coco80: Path, name: str, params: dict[str, Any], title: str
) -> None:
    assert title in titles(compute(coco80, name, params).figure)


def test_a_plot_of_every_class_has_no_such_title(tmp_path: Path) -> None:
    db = detection_index(tmp_path)  # coco8: 12 classes, all named, all shown
    assert not any("classes" in t for t in titles(compute(db, "DetectionClassFrequency").figure))


@pytest.mark.parametrize("levels", [[118, 121, 124, 127, 130], [3, 60, 128, 200, 252]])
def test_brightness_axis_spans_the_data(tmp_path: Path, levels: list[int]) -> None:
    train = tmp_path / "train"
    train.mkdir()
    for n, level in enumerate(levels):
        Image.new("L", (64, 48), level).save(train / f"{n}.png")
    db = tmp_path / "bright.db"
    scan(db, {"train": [train]}, workers=1)
    result = compute(db, "ImagesAverageBrightness")
    low, high = result.figure.axes[0].get_xlim()
    assert low <= min(levels) and high >= max(levels)  # nothing cut
    assert high - low <= 1.2 * (max(levels) - min(levels)) + 2  # nor squeezed into 0..255
    assert sum(result.stats["train"]["histogram"]["counts"]) == len(levels)


def portrait_dataset(tmp: Path, size: tuple[int, int]) -> Path:
    """Images of one size with a box in their top-left quarter, YOLO labels beside them."""
    images, labels = tmp / "data" / "images" / "train", tmp / "data" / "labels" / "train"
    labels.mkdir(parents=True)
    for n in range(3):
        make_image(images / f"{n}.png", size, (40 * n, 120, 200))
        (labels / f"{n}.txt").write_text("0 0.25 0.25 0.3 0.2\n")
    return images


@pytest.mark.parametrize("size", [(120, 240), (300, 100)])
def test_density_maps_keep_the_images_aspect_ratio(tmp_path: Path, size: tuple[int, int]) -> None:
    db = tmp_path / "shape.db"
    scan(db, {"train": [portrait_dataset(tmp_path, size)]}, workers=1)
    fig = compute(db, "DetectionClassHeatmap").figure
    ax = fig.axes[0]
    assert ax.get_box_aspect() == pytest.approx(size[1] / size[0])
    fig.canvas.draw()
    box = ax.get_window_extent()
    assert box.height / box.width == pytest.approx(size[1] / size[0], rel=0.02)  # as drawn
    heat = np.asarray(ax.images[0].get_array())
    assert heat[: heat.shape[0] // 2, : heat.shape[1] // 2].sum() == heat.sum()  # the box lies top left
