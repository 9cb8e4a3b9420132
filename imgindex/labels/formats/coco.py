"""COCO JSON: images[] with width/height, annotations[] with bbox [x, y, w, h] in pixels, categories[]."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils

from .base import ClassTable, LabelError, LabelFormat, LabelPlan, Reading, read_text
from .images import ImageIndex
from .model import (
    MALFORMED_ROW,
    MAX_COORDINATE,
    MISSING_IMAGE_FILE,
    Parsed,
    Problem,
    Size,
    add_box,
    class_name,
    valid_class_id,
)

Resolver = Callable[[str], str | None]  # COCO file_name -> absolute image path, None when not on disk


def looks_like_coco(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("images"), list) and "annotations" in data


def parse_coco_text(text: str, path: str, resolve: Resolver) -> Parsed:
    """Parse a COCO file; a file that is not JSON or not COCO gives Parsed.error."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return Parsed(error=f"not valid JSON: {exc}")
    except RecursionError:
        return Parsed(error="not a COCO file: JSON nested too deep to read")
    if not looks_like_coco(data):
        return Parsed(error="not a COCO file: no 'images' list and 'annotations'")
    return parse_coco(data, path, resolve)


def parse_coco(data: dict[str, Any], path: str, resolve: Resolver) -> Parsed:
    parsed = Parsed()
    parsed.classes = _categories(data.get("categories"))
    images = _images(data["images"], path, resolve, parsed)
    annotations = data.get("annotations") or []
    for index, ann in enumerate(annotations if isinstance(annotations, list) else [], start=1):
        _annotation(parsed, ann, (path, index), images, parsed.classes)
    return parsed


def _categories(categories: Any) -> dict[int, str]:
    out: dict[int, str] = {}
    for cat in categories if isinstance(categories, list) else []:
        if isinstance(cat, dict) and valid_class_id(cat.get("id")):
            out[int(cat["id"])] = str(cat.get("name", ""))
    return out


def _images(
    entries: list[Any], path: str, resolve: Resolver, parsed: Parsed
) -> dict[Any, tuple[str | None, Size | None]]:
    """image id -> (resolved path, size); records missing_image_file for names not on disk."""
    images: dict[Any, tuple[str | None, Size | None]] = {}
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or "id" not in entry or not isinstance(entry.get("file_name"), str):
            parsed.problems.append(Problem(MALFORMED_ROW, path, None, f"images[{index - 1}] has no id or file_name"))
            continue
        found = resolve(entry["file_name"])
        if found is None:
            parsed.problems.append(
                Problem(
                    MISSING_IMAGE_FILE,
                    path,
                    None,
                    f"images[{index - 1}] names {entry['file_name']!r}, which is not in the split",
                )
            )
        else:
            parsed.images.append(found)
        images[entry["id"]] = (found, _size(entry.get("width"), entry.get("height")))
    return images


def _size(width: Any, height: Any) -> Size | None:
    """(width, height) in pixels when both are positive finite numbers, else None (unknown)."""
    numbers = (width, height)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
        return None
    if not all(math.isfinite(v) and 0 < v <= MAX_COORDINATE for v in numbers):
        return None
    return int(width), int(height)


def _annotation(
    parsed: Parsed,
    ann: Any,
    where: tuple[str, int],
    images: dict[Any, tuple[str | None, Size | None]],
    names: dict[int, str],
) -> None:
    if not isinstance(ann, dict):
        parsed.problems.append(Problem(MALFORMED_ROW, where[0], where[1], "annotation is not an object"))
        return
    bbox = ann.get("bbox")
    if ann.get("image_id") not in images:
        parsed.problems.append(
            Problem(
                MALFORMED_ROW,
                where[0],
                where[1],
                f"annotation id {ann.get('id')} names unknown image_id {ann.get('image_id')!r}",
            )
        )
        return
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
        parsed.problems.append(
            Problem(
                MALFORMED_ROW,
                where[0],
                where[1],
                f"annotation id {ann.get('id')} has no [x, y, w, h] bbox: {str(bbox)[:80]}",
            )
        )
        return
    image_path, size = images[ann["image_id"]]
    category = ann.get("category_id")
    if not valid_class_id(category):
        detail = f"annotation id {ann.get('id')} has category_id {str(category)[:40]!r}, not an integer id"
        parsed.problems.append(Problem(MALFORMED_ROW, where[0], where[1], detail))
        return
    class_id = int(category)
    name = class_name(parsed, where, class_id, names)
    values = (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3]))
    add_box(parsed, where, image_path, (class_id, name), values, ("xywh", False), size)


# ---------------------------------------------------------------- the format


def coco_candidates(root: Path) -> list[Path]:
    """COCO files by convention: Roboflow's _annotations.coco.json, instances_*.json in the folder,
    and COCO's annotations/instances_<folder name>.json in the folder or up to two levels above."""
    found = [root / "_annotations.coco.json"] if (root / "_annotations.coco.json").is_file() else []
    found += sorted(p for p in root.glob("instances_*.json") if p.is_file())
    for base in (root, root.parent, root.parent.parent):
        path = base / "annotations" / f"instances_{root.name}.json"
        if path.is_file() and path not in found:
            found.append(path)
    return found


def image_in_split(plan: LabelPlan, json_path: Path, name: str, images: ImageIndex) -> str | None:
    """The split's image a COCO file_name refers to: relative to the folder or the file, else by name."""
    for base in (plan.root, json_path.parent):
        candidate = os.path.normpath(base / name)
        if candidate in images.sizes:
            return candidate
    return images.by_name(name)


class CategoryClasses(ClassTable):
    """The split's classes are the categories of its COCO files, written as the files are read."""

    def before_read(self, db: sqlite_utils.Database, split: str) -> None:
        db.execute("DELETE FROM classes WHERE split = ?", [split])


class CocoFormat(LabelFormat):
    """COCO JSON files; their categories are shared by the whole split, so they are read together."""

    name = "coco"
    detect_order = 10
    takes_label_file = True
    reads_together = True
    class_table = CategoryClasses()

    def find(self, split: str, root: Path) -> LabelPlan | None:
        files = coco_candidates(root)
        if not files:
            return None
        return LabelPlan(split, root, self.name, files=tuple(files), reason=f"COCO file {files[0].name}")

    def forced_plan(self, split: str, root: Path, file: Path | None = None) -> LabelPlan:
        if file is not None:
            if not file.is_file():
                raise LabelError(f"--coco {file}: no such file")
            return LabelPlan(split, root, self.name, files=(file.resolve(),), reason=f"--coco {file}")
        plan = self.find(split, root)
        if plan is None:
            raise LabelError(
                f"--labels coco: no _annotations.coco.json or annotations/instances_{root.name}.json "
                f"found for split {split!r} ({root}); name the file with --coco FILE"
            )
        return plan

    def read(self, plan: LabelPlan, path: Path, reading: Reading) -> Parsed:
        text, error = read_text(path)
        if text is None:
            return Parsed(error=error)
        return parse_coco_text(text, str(path), lambda name: image_in_split(plan, path, name, reading.images))

    def links_changed(
        self, plan: LabelPlan, path: str, linked: set[str], images: ImageIndex, touched: set[str]
    ) -> bool:
        """Any image of the split appearing or changing may be one the file names."""
        return bool(touched)


FORMAT = CocoFormat()
