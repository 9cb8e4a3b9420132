"""COCO JSON: images[] with width/height, annotations[] with bbox [x, y, w, h] in pixels, categories[]."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .model import MALFORMED_ROW, MISSING_IMAGE_FILE, Parsed, Problem, Size, add_box, class_name

Resolver = Callable[[str], str | None]  # COCO file_name -> absolute image path, None when not on disk


def looks_like_coco(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("images"), list) and "annotations" in data


def parse_coco_text(text: str, path: str, resolve: Resolver) -> Parsed:
    """Parse a COCO file; a file that is not JSON or not COCO gives Parsed.error."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return Parsed(error=f"not valid JSON: {exc}")
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
        if isinstance(cat, dict) and isinstance(cat.get("id"), int):
            out[cat["id"]] = str(cat.get("name", ""))
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
        width, height = entry.get("width"), entry.get("height")
        size = (
            (int(width), int(height)) if isinstance(width, (int, float)) and isinstance(height, (int, float)) else None
        )
        images[entry["id"]] = (found, size)
    return images


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
    class_id = category if isinstance(category, int) else None
    name = class_name(parsed, where, class_id, names) if class_id is not None else None
    values = (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3]))
    add_box(parsed, where, image_path, (class_id, name), values, ("xywh", False), size)
