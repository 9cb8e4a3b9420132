"""Incremental equals clean: after any sequence of additions, changes, removals and renames, with
re-scans in between, the index holds what a clean scan of the same files holds (every table of
imgindex.consistency: images, labels, label problems, near pairs and their grades, the verdict).

The pool: real photos (coco8 with their YOLO labels, the coco128 sample) and a dense cluster of
shifted crops of one photo, with the partner cap lowered to 3 so that it binds."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import DATA, invoke, shifted_crops
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgindex import consistency
from imgindex.near import pairs as near_pairs

COCO8 = DATA / "coco8"
SAMPLE = sorted((DATA / "coco128_sample" / "images" / "train2017").glob("*.jpg"))[:6]
CAP = 3


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Source files the steps draw from."""
    root = tmp_path_factory.mktemp("pool")
    return [
        *sorted((COCO8 / "images" / "train").glob("*.jpg")),
        *SAMPLE,
        *shifted_crops(root / "crops", 3, 4, quality=90),
    ]


def dataset(root: Path) -> Path:
    """A YOLO split: coco8's train images with their labels (the steps change the images)."""
    split = root / "train"
    shutil.copytree(COCO8 / "images" / "train", split / "images")
    shutil.copytree(COCO8 / "labels" / "train", split / "labels")
    return split


def touch_later(path: Path) -> None:
    """A new mtime, so that the change is seen whatever the file system's clock resolution."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def apply(step: tuple[str, int, int], images: Path, pool: list[Path]) -> None:
    op, k, n = step
    present = sorted(images.glob("*.jpg"))
    if op == "add" or not present:
        shutil.copy(pool[k % len(pool)], images / f"added_{n}_{pool[k % len(pool)].name}")
        return
    target = present[k % len(present)]
    if op == "remove":
        target.unlink()
    elif op == "change":
        shutil.copy(pool[n % len(pool)], target)
        touch_later(target)
    elif op == "rename":
        target.rename(images / f"renamed_{n}_{target.name}")


STEPS = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "change", "rename"]), st.integers(0, 40), st.integers(0, 40)),
    min_size=1,
    max_size=5,
)


def scan(db: Path, split: Path) -> None:
    invoke("scan", "--db", str(db), "-q", "--workers", "1", f"train={split}")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_an_incremental_index_equals_a_clean_scan(
    steps: list[tuple[str, int, int]], pool: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(near_pairs, "MAX_PARTNERS", CAP)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        split = dataset(root)
        for path in pool[8:]:
            shutil.copy(path, split / "images" / path.name)
        incremental = root / "incremental.db"
        scan(incremental, split)
        for step in steps:
            apply(step, split / "images", pool)
            scan(incremental, split)
        clean = root / "clean.db"
        scan(clean, split)
        diff = consistency.compare_files(incremental, clean)
        assert diff == {}, {name: (len(x), len(y)) for name, (x, y) in diff.items()}
