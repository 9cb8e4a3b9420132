"""Class names of YOLO-style datasets: data.yaml / dataset.yaml (Ultralytics, Roboflow) or classes.txt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .base import read_text
from .model import valid_class_id

MAX_NAMES_CHARS = 1 << 20  # a names file larger than this (1 MiB of text) is not read
MAX_NAME_CHARS = 200

YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")
TEXT_NAMES = ("classes.txt", "obj.names")
PARENT_LEVELS = 4  # how far above the split folder a data.yaml is looked for


def find_names_file(folders: list[Path], levels: int = PARENT_LEVELS) -> Path | None:
    """The first data.yaml/dataset.yaml holding `names`, looking in each folder and up to `levels`
    parents; then classes.txt / obj.names in the folders themselves."""
    for folder in folders:
        for candidate in [folder, *list(folder.parents)[:levels]]:
            for name in YAML_NAMES:
                path = candidate / name
                if path.is_file() and load_names(path) is not None:
                    return path
    for folder in folders:
        for name in TEXT_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def load_names(path: Path) -> dict[int, str] | None:
    """{class id: name} from a names file; None when it has none or cannot be read."""
    text, _ = read_text(path)
    if text is None or len(text) > MAX_NAMES_CHARS:
        return None
    if path.name in TEXT_NAMES or path.suffix.lower() in (".txt", ".names"):
        return {i: line.strip()[:MAX_NAME_CHARS] for i, line in enumerate(text.splitlines()) if line.strip()}
    if path.suffix.lower() == ".json":
        return coco_category_names(text)
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return None
    return names_from_mapping(data.get("names") if isinstance(data, dict) else None)


def coco_category_names(text: str) -> dict[int, str] | None:
    """{category id: name} of a COCO file's categories; None when it has none."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    categories = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(categories, list):
        return None
    return names_from_mapping({c.get("id"): c.get("name") for c in categories if isinstance(c, dict)}) or None


def names_from_mapping(names: Any) -> dict[int, str] | None:
    """Ultralytics accepts names as a list or as a {id: name} mapping. A name is a string or a
    number (cut at MAX_NAME_CHARS); anything else (a nested list or mapping, e.g. a YAML alias
    bomb) names nothing, and so does an id that is not a class id."""
    pairs = enumerate(names) if isinstance(names, list) else names.items() if isinstance(names, dict) else None
    if pairs is None:
        return None
    out: dict[int, str] = {}
    for key, value in pairs:
        class_id = _class_id(key)
        if class_id is not None and isinstance(value, (str, int, float)):
            out[class_id] = str(value)[:MAX_NAME_CHARS]
    return out


def _class_id(key: Any) -> int | None:
    if isinstance(key, str) and key.strip().lstrip("-").isdigit():
        key = int(key)
    return int(key) if valid_class_id(key) else None
